//! Clients' histories of an etcd cluster under faults, and the checks that judge them: a
//! linearizability checker for put / get / compare-and-swap, revisions that only grow, a
//! watch that saw every committed change once and in order, and every acknowledged write on
//! every member. The `fault-client` binary records the histories and runs the checks.

pub mod checks;
pub mod history;
pub mod linearizable;
pub mod report;
