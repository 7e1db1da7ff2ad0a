//! Workload attestation like SPIRE's unix attestor: the caller's pid, uid and
//! gid come from the socket's peer credentials (SO_PEERCRED); names,
//! supplementary groups and the executable from the system and /proc.

use std::collections::HashSet;
use std::ffi::CStr;
use std::path::Path;

/// Who is on the other end of a connection, as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    pub pid: Option<i32>,
    pub uid: u32,
    pub gid: u32,
}

impl PeerInfo {
    pub fn of(stream: &tokio::net::UnixStream) -> Option<Self> {
        let cred = stream.peer_cred().ok()?;
        Some(Self {
            pid: cred.pid(),
            uid: cred.uid(),
            gid: cred.gid(),
        })
    }
}

/// What attestation needs to look up beyond uid and gid: only the selector
/// types some entry uses (name lookups and /proc reads cost time per call).
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    pub user: bool,
    pub group: bool,
    pub supplementary: bool,
    pub path: bool,
    pub sha256: bool,
}

impl Needs {
    pub const ALL: Needs = Needs {
        user: true,
        group: true,
        supplementary: true,
        path: true,
        sha256: true,
    };
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; getpwuid_r writes strings into `buf`,
    // which outlives every use of `pwd`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) != 0
            || result.is_null()
        {
            return None;
        }
        Some(CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned())
    }
}

fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: as in `user_name`, with getgrgid_r.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut result = std::ptr::null_mut();
        if libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) != 0
            || result.is_null()
        {
            return None;
        }
        Some(CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned())
    }
}

fn supplementary_gids(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The caller's selectors, or `Err` if attestation failed (the process is
/// gone or its executable cannot be read).
pub fn selectors(peer: &PeerInfo, needs: Needs) -> Result<HashSet<String>, String> {
    let mut out = HashSet::new();
    out.insert(format!("unix:uid:{}", peer.uid));
    out.insert(format!("unix:gid:{}", peer.gid));
    if let Some(name) = needs.user.then(|| user_name(peer.uid)).flatten() {
        out.insert(format!("unix:user:{name}"));
    }
    if let Some(name) = needs.group.then(|| group_name(peer.gid)).flatten() {
        out.insert(format!("unix:group:{name}"));
    }
    let Some(pid) = peer.pid.filter(|p| *p > 0) else {
        return Ok(out);
    };
    if needs.supplementary {
        for gid in supplementary_gids(pid) {
            out.insert(format!("unix:supplementary_gid:{gid}"));
            if let Some(name) = group_name(gid) {
                out.insert(format!("unix:supplementary_group:{name}"));
            }
        }
    }
    if needs.path || needs.sha256 {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map_err(|e| format!("cannot read the executable of pid {pid}: {e}"))?;
        out.insert(format!("unix:path:{}", exe.display()));
        if needs.sha256 {
            let bytes = std::fs::read(format!("/proc/{pid}/exe"))
                .map_err(|e| format!("cannot hash the executable of pid {pid}: {e}"))?;
            let digest: String = openssl::sha::sha256(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.insert(format!("unix:sha256:{digest}"));
        }
    }
    // SPIRE re-checks that the caller is still alive, against PID reuse.
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(format!("process {pid} exited during attestation"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attests_this_process() {
        let me = PeerInfo {
            pid: Some(std::process::id() as i32),
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
        };
        let selectors = selectors(&me, Needs::ALL).unwrap();
        assert!(selectors.contains(&format!("unix:uid:{}", me.uid)));
        let exe = std::env::current_exe().unwrap();
        assert!(
            selectors.contains(&format!("unix:path:{}", exe.display())),
            "{selectors:?}"
        );
        assert!(selectors
            .iter()
            .any(|s| s.starts_with("unix:sha256:") && s.len() == "unix:sha256:".len() + 64));
        if me.uid == 0 {
            assert!(selectors.contains("unix:user:root"));
            assert!(selectors.contains("unix:group:root"));
        }
        let cheap = super::selectors(&me, Needs::default()).unwrap();
        assert!(
            cheap
                .iter()
                .all(|s| s.starts_with("unix:uid:") || s.starts_with("unix:gid:")),
            "{cheap:?}"
        );
    }

    #[test]
    fn fails_for_a_gone_process() {
        let gone = PeerInfo {
            pid: Some(i32::MAX - 1),
            uid: 0,
            gid: 0,
        };
        assert!(selectors(&gone, Needs::ALL).is_err());
        assert!(
            selectors(&gone, Needs::default()).is_err(),
            "liveness is checked too"
        );
    }
}
