/*!
The machine boundary: files, systemd, the etcd user, installing etcd, TLS files, and the charm's
own state on this machine.
*/

pub mod host;
pub mod install;
pub mod tls;
