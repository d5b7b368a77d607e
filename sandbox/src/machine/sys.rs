//! The few libc calls the machine layer needs, each wrapped once so the rest of the module stays
//! free of `unsafe`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sends `sig` to `pid` (a negative pid names a process group); "no such process" is success.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    if pid == 0 || pid == -1 {
        // 0 and -1 mean "my group" and "everyone": never what a caller here wants.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        ));
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Takes an exclusive `flock` on `file`; with `wait == false` returns `Ok(false)` when another
/// process holds it.
pub fn lock_exclusive(file: &File, wait: bool) -> io::Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock(2) on a descriptor that `file` keeps open for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Makes the child start a new session (no controlling terminal, own process group), so it
/// survives its parent and the parent's terminal.
pub fn new_session(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls setsid(2), which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Moves the child into each cgroup whose `cgroup.procs` file is listed, before it execs (so the
/// program starts there and everything it creates is nested below).
pub fn join_cgroups(cmd: &mut Command, procs_files: Vec<std::ffi::CString>) {
    // SAFETY: the closure runs between fork and exec; it only calls open/write/close (all
    // async-signal-safe) on paths allocated before the fork, and builds errors from errno only.
    unsafe {
        cmd.pre_exec(move || {
            for p in &procs_files {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = io::Error::last_os_error();
                libc::close(fd);
                if n != 1 {
                    return Err(err);
                }
            }
            Ok(())
        });
    }
}

/// Waits for `child` to exit (wait4(2), retried on EINTR) and returns its status with the CPU
/// time (user + system) of it and of every descendant it and they waited for: the kernel adds a
/// reaped child's times, its own reaped children's included, to its parent's at the wait.
pub fn wait_with_cpu(
    child: std::process::Child,
) -> io::Result<(std::process::ExitStatus, std::time::Duration)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4(2) writes only into the two locals passed by pointer; `pid` is our own
        // child, not yet waited for (`child` is consumed, so std cannot wait for it too).
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec.max(0) as u64)
            + std::time::Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    drop(child);
    Ok((
        std::process::ExitStatus::from_raw(status),
        tv(ru.ru_utime) + tv(ru.ru_stime),
    ))
}

/// Restores the default SIGPIPE action, so a command-line process whose output pipe closes
/// (`sandbox status | head`) ends quietly as Unix tools do instead of panicking.
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `open_tree(2)` flag: clone the tree as a detached mount.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount(2)` flag: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
/// `mount_setattr(2)` attribute: read-only.
const MOUNT_ATTR_RDONLY: u64 = 1;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes `cmd`'s child, before it execs, clone the host directory `src` as a detached mount
/// (read-only when asked), enter the mount namespace `ns_fd` (its root becomes that
/// namespace's root) and move the mount to `dst` there; `spawn` fails with the errno of the
/// step that failed.
pub fn move_mount_into(
    cmd: &mut Command,
    src: std::ffi::CString,
    ns_fd: std::os::fd::RawFd,
    dst: std::ffi::CString,
    read_only: bool,
) {
    let empty = std::ffi::CString::default();
    // SAFETY: the closure runs in the forked child before exec and only makes syscalls on
    // memory allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fail = || Err(io::Error::last_os_error());
            let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
            let tree = libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, src.as_ptr(), flags);
            if tree < 0 {
                return fail();
            }
            if read_only {
                let attr = MountAttr {
                    attr_set: MOUNT_ATTR_RDONLY,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                };
                let r = libc::syscall(
                    libc::SYS_mount_setattr,
                    tree,
                    empty.as_ptr(),
                    libc::AT_EMPTY_PATH,
                    &attr as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                );
                if r < 0 {
                    return fail();
                }
            }
            if libc::setns(ns_fd, libc::CLONE_NEWNS) != 0 {
                return fail();
            }
            let r = libc::syscall(
                libc::SYS_move_mount,
                tree,
                empty.as_ptr(),
                libc::AT_FDCWD,
                dst.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            );
            if r < 0 {
                return fail();
            }
            Ok(())
        });
    }
}
