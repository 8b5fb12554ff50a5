//! Guest-side bindings of the `scanner-policy` world in `wit/`.
//!
//! A policy plugin implements [`PluginGuest`] and [`PolicyGuest`] on one type
//! and calls `repod_policy_sdk::export_policy!(ThatType);`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "scanner-policy",
    pub_export_macro: true,
    export_macro_name: "export_policy",
    default_bindings_module: "repod_policy_sdk",
});

pub use exports::repod::plugin::plugin::{Guest as PluginGuest, PluginInfo};
pub use exports::repod::plugin::policy::Guest as PolicyGuest;
pub use exports::repod::plugin::policy::*;
pub use repod::plugin::types::Field;
