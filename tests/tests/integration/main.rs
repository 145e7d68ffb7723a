//! Tenure's integration tests, in one test binary: one link instead of one per
//! file keeps the build fast and the target directory small.

mod ad_scim;
mod cli;
mod cli_live;
mod cloud_example;
mod crash;
mod desired_path;
mod directory;
mod entra;
mod google;
mod grants;
mod hardening;
mod hot_swap;
mod itsm;
mod languages;
mod ldap;
mod lever;
mod lever_customer;
mod lifecycle;
mod notifications;
mod okta;
mod pipeline;
mod plugin_registry;
mod quota;
mod reliability;
mod repository;
mod rule_fidelity;
mod rule_sets;
mod sandbox;
mod scaffold;
mod scim;
mod sdk;
mod source;
mod sources;
mod versions;
