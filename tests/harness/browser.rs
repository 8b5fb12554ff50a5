//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which scripts/setup installs) for the console tests.
//! Each [`Browser`] runs its own chromedriver on a free loopback port and a
//! fresh browser profile; calls block, like the rest of the harness.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a wait for something on the page lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Browser {
    driver: Child,
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    /// The browser's profile directory, removed with it.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser with a 1280x900 window: a laptop screen.
    pub fn start() -> Browser {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: scripts/setup installs chromium and chromium-driver (as root)"
            );
        }
        let port = super::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        let client = loop {
            let attempt = runtime.block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url),
            );
            match attempt {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("no WebDriver session: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        Browser {
            driver,
            client: Some(client),
            runtime,
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        self.runtime
            .block_on(f)
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    pub fn goto(&self, url: &str) {
        self.run(self.client().goto(url));
    }

    pub fn current_url(&self) -> String {
        self.run(self.client().current_url()).to_string()
    }

    /// Runs `script` in the page; its `return` value.
    pub fn eval(&self, script: &str) -> Value {
        self.run(self.client().execute(script, vec![]))
    }

    pub fn all(&self, css: &str) -> Vec<Element> {
        self.run(self.client().find_all(Locator::Css(css)))
    }

    /// The first element matching `css`, waiting for it to appear.
    pub fn find(&self, css: &str) -> Element {
        self.wait(&format!("an element matching {css}"), || {
            self.all(css).into_iter().next()
        })
    }

    /// Waits until `check` gives something, then gives it; fails the test
    /// with the page's text after [`PATIENCE`].
    pub fn wait<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = check() {
                return found;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {PATIENCE:?} for {what}; the page says:\n{}",
                    self.page_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The visible text of the page.
    pub fn page_text(&self) -> String {
        self.eval("return document.body.innerText;")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page's text contains `text`.
    pub fn wait_text(&self, text: &str) {
        self.wait(&format!("the text {text:?}"), || {
            self.page_text().contains(text).then_some(())
        });
    }

    pub fn text(&self, element: &Element) -> String {
        self.run(element.text())
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.run(element.click());
    }

    /// Clicks the button whose text is exactly `label`.
    pub fn click_button(&self, label: &str) {
        let button = self.wait(&format!("a button {label:?}"), || {
            self.all("button")
                .into_iter()
                .find(|b| self.runtime.block_on(b.text()).is_ok_and(|t| t == label))
        });
        self.run(button.click());
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.run(element.clear());
        self.run(element.send_keys(text));
    }

    /// Chooses `path` in the file input `input` (its change event fires).
    pub fn send_file(&self, input: &Element, path: &Path) {
        // chromedriver wants a canonical path (no `..`).
        let path = std::fs::canonicalize(path).unwrap();
        self.run(input.send_keys(&path.display().to_string()));
    }

    /// The cells' texts of each table row matching `css`.
    pub fn rows(&self, css: &str) -> Vec<Vec<String>> {
        let script = format!(
            "return [...document.querySelectorAll({})].map(r => [...r.cells].map(c => c.innerText));",
            Value::String(css.to_owned())
        );
        serde_json::from_value(self.eval(&script)).expect("rows of cells")
    }

    /// Picks the option with `value` in the select matching `css`.
    pub fn choose(&self, css: &str, value: &str) {
        let element = self.find(css);
        self.run(element.select_by_value(value));
    }

    /// Signs in to the console at `base` with `token`.
    pub fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/"));
        self.fill("#token", token);
        self.click("form.signin button[type=submit]");
        self.find("#nav a");
    }

    pub fn sign_out(&self) {
        self.click_button("Sign out");
        self.find("#token");
    }

    /// Saves a PNG of the window as `<dir>/<name>.png` when
    /// `REPOD_SCREENSHOTS` names a directory (scripts/screenshots sets it).
    pub fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("REPOD_SCREENSHOTS") else {
            return;
        };
        let png = self.run(self.client().screenshot());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
