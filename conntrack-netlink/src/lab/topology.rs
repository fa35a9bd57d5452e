//! [`Lab`]: client namespaces -> a router namespace doing NAT with
//! nftables -> server namespaces, built with `ip` and `nft`, removed on
//! drop; [`clean_stale`] removes what a crashed lab left.
//!
//! Addresses (198.18.0.0/15, reserved for benchmarking by RFC 2544):
//!
//! | what | address |
//! |---|---|
//! | client `i` | `198.18.i.2/24`, default route via `198.18.i.1` (the router's `c<i>`) |
//! | server `j` | `198.19.j.2/24`, default route via `198.19.j.1` (the router's `s<j>`) |
//! | spoofed sources | `198.18.128.0/17`, routed by the router to client 0 |
//! | service address | `198.19.255.1`, DNAT'd by the router to the servers |

use super::{LabError, PREFIX, run, run_with_input};
use crate::Netns;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The service address clients use when the router DNATs to the servers.
pub const SERVICE_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 1);
/// The first of the spoofed source addresses (a /17 routed to client 0).
pub const SPOOF_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 128, 0);
/// How many spoofed source addresses there are.
pub const SPOOF_COUNT: u32 = 1 << 15;

/// One client or server namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The namespace's name (`ip netns` knows it).
    pub netns: String,
    /// Its address.
    pub addr: Ipv4Addr,
    /// The router's address on its link.
    pub gateway: Ipv4Addr,
    /// The router's interface toward it (`c0`, `s1`).
    pub router_iface: String,
}

impl Host {
    /// The namespace, for [`Netns::spawn`] and [`crate::Conntrack::open_in`].
    pub fn ns(&self) -> Netns {
        Netns::named(&self.netns)
    }
}

/// The router's nftables ruleset, rendered by [`Ruleset::render`] into one
/// `table ip lab`: DNAT of the service address, source NAT toward the
/// servers, and a forward chain that drops packets conntrack finds invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// DNAT `SERVICE_ADDR:port` (TCP and UDP) to the servers, one picked
    /// at random per new flow (`numgen random mod N map`).
    pub dnat_port: Option<u16>,
    /// Masquerade what leaves toward the servers.
    pub masquerade: bool,
    /// With `fully-random` port selection.
    pub fully_random: bool,
    /// `ct state invalid drop` in the forward chain (a usual firewall;
    /// `invalid` is counted before the rule sees the packet).
    pub drop_invalid: bool,
    /// A `counter` on the masquerade rule: the packets that reached it
    /// ([`Lab::masquerade_packets`]), which source NAT itself drops when
    /// it has no address to use (no conntrack counter counts those).
    pub count_masquerade: bool,
}

impl Default for Ruleset {
    fn default() -> Self {
        Ruleset {
            dnat_port: None,
            masquerade: true,
            fully_random: false,
            drop_invalid: true,
            count_masquerade: false,
        }
    }
}

impl Ruleset {
    /// The `nft -f` text for `servers` servers.
    ///
    /// ```
    /// use conntrack_netlink::lab::Ruleset;
    /// let r = Ruleset { dnat_port: Some(53), fully_random: true, ..Ruleset::default() };
    /// let text = r.render(2);
    /// assert!(text.contains("dnat to numgen random mod 2 map { 0 : 198.19.0.2, 1 : 198.19.1.2 }"));
    /// assert!(text.contains("oifname \"s*\" masquerade fully-random"));
    /// ```
    pub fn render(&self, servers: usize) -> String {
        let mut pre = String::new();
        if let Some(port) = self.dnat_port {
            let map: Vec<String> = (0..servers)
                .map(|j| format!("{j} : {}", server_addr(j)))
                .collect();
            for proto in ["tcp", "udp"] {
                pre.push_str(&format!(
                    "    ip daddr {SERVICE_ADDR} {proto} dport {port} dnat to numgen random mod \
                     {servers} map {{ {} }}\n",
                    map.join(", ")
                ));
            }
        }
        let post = if self.masquerade {
            format!(
                "    oifname \"s*\" {}masquerade{}\n",
                if self.count_masquerade {
                    "counter "
                } else {
                    ""
                },
                if self.fully_random {
                    " fully-random"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        };
        let fwd = if self.drop_invalid {
            "    ct state invalid drop\n"
        } else {
            ""
        };
        format!(
            "table ip lab {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; \
             policy accept;\n{pre}  }}\n  chain postrouting {{\n    type nat hook postrouting \
             priority srcnat; policy accept;\n{post}  }}\n  chain forward {{\n    type filter \
             hook forward priority filter; policy accept;\n{fwd}  }}\n}}\n"
        )
    }
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// Client namespaces (1 to 8).
    pub clients: usize,
    /// Server namespaces (1 to 8).
    pub servers: usize,
    /// The router's ruleset.
    pub ruleset: Ruleset,
    /// Per-namespace sysctls of the router (`net.netfilter.*` that are
    /// not global), as `(name, value)`.
    pub router_sysctls: Vec<(String, String)>,
    /// nftables rules for each server's `input` hook (an `inet` table),
    /// e.g. `tcp dport != 80 drop` for a server that ignores scans.
    pub server_input: Vec<String>,
    /// Leave the router no IPv4 address a MASQUERADE toward the servers
    /// could use: its addresses on the servers' links are removed (a
    /// device route keeps each server reachable) and those on the
    /// clients' links are made `scope link`. `nf_nat_masquerade_ipv4()`
    /// (net/netfilter/nf_nat_masquerade.c) asks `inet_select_addr(out,
    /// nexthop, RT_SCOPE_UNIVERSE)`, which looks at the output device and
    /// then every device of the namespace for a universe-scope address,
    /// finds none, logs "s0 ate my IP address" and returns `NF_DROP` for
    /// the first packet of every new flow toward the servers.
    pub masquerade_without_address: bool,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            clients: 1,
            servers: 1,
            ruleset: Ruleset::default(),
            router_sysctls: Vec::new(),
            server_input: Vec::new(),
            masquerade_without_address: false,
        }
    }
}

fn client_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, i as u8, 2)
}

fn server_addr(j: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, j as u8, 2)
}

/// A built lab; dropping it deletes its namespaces.
#[derive(Debug)]
pub struct Lab {
    id: String,
    router: String,
    clients: Vec<Host>,
    servers: Vec<Host>,
    removed: bool,
}

impl Lab {
    /// Builds the lab: first removes stale lab namespaces ([`clean_stale`]),
    /// then creates `PREFIX-PID-N-router`, `-c0..`, `-s0..`. On error,
    /// whatever was created is removed.
    pub fn build(spec: &LabSpec) -> Result<Lab, LabError> {
        static N: AtomicUsize = AtomicUsize::new(0);
        if !(1..=8).contains(&spec.clients) || !(1..=8).contains(&spec.servers) {
            return Err(LabError::Command {
                command: "lab build".into(),
                detail: "1 to 8 clients and servers".into(),
            });
        }
        clean_stale()?;
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            router: format!("{id}-router"),
            id,
            clients: Vec::new(),
            servers: Vec::new(),
            removed: false,
        };
        // `lab` deletes what exists so far if a step fails.
        lab.create(spec)?;
        Ok(lab)
    }

    fn create(&mut self, spec: &LabSpec) -> Result<(), LabError> {
        add_netns(&self.router)?;
        let r = self.router.clone();
        for i in 0..spec.clients {
            let host = Host {
                netns: format!("{}-c{i}", self.id),
                addr: client_addr(i),
                gateway: Ipv4Addr::new(198, 18, i as u8, 1),
                router_iface: format!("c{i}"),
            };
            add_netns(&host.netns)?;
            self.clients.push(host.clone());
            link(&r, &host)?;
        }
        for j in 0..spec.servers {
            let host = Host {
                netns: format!("{}-s{j}", self.id),
                addr: server_addr(j),
                gateway: Ipv4Addr::new(198, 19, j as u8, 1),
                router_iface: format!("s{j}"),
            };
            add_netns(&host.netns)?;
            self.servers.push(host.clone());
            link(&r, &host)?;
            if !spec.server_input.is_empty() {
                let rules: String = spec
                    .server_input
                    .iter()
                    .map(|l| format!("    {l}\n"))
                    .collect();
                nft(
                    &host.netns,
                    &format!(
                        "table inet lab {{\n  chain input {{\n    type filter hook input priority \
                         filter; policy accept;\n{rules}  }}\n}}\n"
                    ),
                )?;
            }
        }
        if spec.masquerade_without_address {
            self.take_masquerade_addresses()?;
        }
        run(
            "ip",
            &[
                "-n",
                &r,
                "route",
                "add",
                &format!("{SPOOF_BASE}/17"),
                "via",
                &client_addr(0).to_string(),
            ],
        )?;
        let mut sysctls: Vec<(String, String)> = vec![
            ("net.ipv4.ip_forward".into(), "1".into()),
            ("net.ipv4.conf.all.rp_filter".into(), "0".into()),
            ("net.ipv4.conf.default.rp_filter".into(), "0".into()),
        ];
        sysctls.extend(spec.router_sysctls.iter().cloned());
        set_sysctls(&r, &sysctls)?;
        nft(&r, &spec.ruleset.render(spec.servers))?;
        Ok(())
    }

    /// [`LabSpec::masquerade_without_address`]: the servers' links keep a
    /// device route and lose the router's address; the clients' links
    /// keep theirs at `scope link`.
    fn take_masquerade_addresses(&self) -> Result<(), LabError> {
        let r = &self.router;
        for s in &self.servers {
            let gw = format!("{}/24", s.gateway);
            run("ip", &["-n", r, "addr", "del", &gw, "dev", &s.router_iface])?;
            let net = format!("{}/24", Ipv4Addr::from(u32::from(s.addr) & !0xff));
            run(
                "ip",
                &["-n", r, "route", "add", &net, "dev", &s.router_iface],
            )?;
        }
        for c in &self.clients {
            let gw = format!("{}/24", c.gateway);
            run("ip", &["-n", r, "addr", "del", &gw, "dev", &c.router_iface])?;
            run(
                "ip",
                &[
                    "-n",
                    r,
                    "addr",
                    "add",
                    &gw,
                    "dev",
                    &c.router_iface,
                    "scope",
                    "link",
                ],
            )?;
        }
        Ok(())
    }

    /// The packets the router's masquerade rule has seen (its `counter`,
    /// with [`Ruleset::count_masquerade`]): the first packet of every new
    /// flow toward the servers. `None` when the rule has no counter.
    pub fn masquerade_packets(&self) -> Result<Option<u64>, LabError> {
        let text = run_with_input(
            "ip",
            &[
                "netns",
                "exec",
                &self.router,
                "nft",
                "list",
                "chain",
                "ip",
                "lab",
                "postrouting",
            ],
            None,
        )?;
        Ok(masquerade_counter(&text))
    }

    /// The lab's id (`ckit-lab-PID-N`), the prefix of its namespaces.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The router namespace's name: point `doctor --netns` at it.
    pub fn router(&self) -> &str {
        &self.router
    }

    /// The router namespace.
    pub fn router_ns(&self) -> Netns {
        Netns::named(&self.router)
    }

    /// The clients.
    pub fn clients(&self) -> &[Host] {
        &self.clients
    }

    /// The servers.
    pub fn servers(&self) -> &[Host] {
        &self.servers
    }

    /// Every namespace of the lab, router first.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.router.clone()];
        v.extend(self.clients.iter().map(|h| h.netns.clone()));
        v.extend(self.servers.iter().map(|h| h.netns.clone()));
        v
    }

    /// Deletes the namespaces now (idempotent). Threads still inside one
    /// keep it alive until they end: stop the traffic first.
    pub fn remove(&mut self) -> Result<(), LabError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let mut first = None;
        for ns in self.namespaces() {
            if Path::new("/var/run/netns").join(&ns).exists()
                && let Err(e) = run("ip", &["netns", "del", &ns])
            {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

fn add_netns(name: &str) -> Result<(), LabError> {
    run("ip", &["netns", "add", name])?;
    run("ip", &["-n", name, "link", "set", "lo", "up"])
}

/// A veth pair between the router and `host`, addressed and up, with the
/// host's default route.
fn link(router: &str, host: &Host) -> Result<(), LabError> {
    run(
        "ip",
        &[
            "-n",
            router,
            "link",
            "add",
            &host.router_iface,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &host.netns,
        ],
    )?;
    let gw = format!("{}/24", host.gateway);
    let addr = format!("{}/24", host.addr);
    run(
        "ip",
        &["-n", router, "addr", "add", &gw, "dev", &host.router_iface],
    )?;
    run(
        "ip",
        &["-n", router, "link", "set", &host.router_iface, "up"],
    )?;
    run(
        "ip",
        &["-n", &host.netns, "addr", "add", &addr, "dev", "eth0"],
    )?;
    run("ip", &["-n", &host.netns, "link", "set", "eth0", "up"])?;
    run(
        "ip",
        &[
            "-n",
            &host.netns,
            "route",
            "add",
            "default",
            "via",
            &host.gateway.to_string(),
        ],
    )
}

/// The packet count of the masquerade rule in `nft list` output
/// (`oifname "s*" counter packets 40 bytes 1160 masquerade`).
fn masquerade_counter(text: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.contains("masquerade"))
        .find_map(|l| {
            let toks: Vec<&str> = l.split_whitespace().collect();
            toks.windows(3)
                .find(|w| w[0] == "counter" && w[1] == "packets")
                .and_then(|w| w[2].parse().ok())
        })
}

/// Loads an nftables ruleset in a namespace (`ip netns exec NS nft -f -`).
pub(crate) fn nft(netns: &str, ruleset: &str) -> Result<(), LabError> {
    run_with_input(
        "ip",
        &["netns", "exec", netns, "nft", "-f", "-"],
        Some(ruleset),
    )
    .map(|_| ())
}

/// Writes per-namespace sysctls from a thread inside the namespace
/// (`/proc/sys/net` shows the namespace of the thread that opens it).
pub(crate) fn set_sysctls(netns: &str, sysctls: &[(String, String)]) -> Result<(), LabError> {
    let owned: Vec<(String, String)> = sysctls.to_vec();
    Netns::named(netns)
        .run(move || {
            for (k, v) in &owned {
                let path = format!("/proc/sys/{}", k.replace('.', "/"));
                std::fs::write(&path, v).map_err(|source| crate::Error::Io {
                    call: "write a sysctl",
                    source: std::io::Error::new(source.kind(), format!("{k}={v}: {source}")),
                })?;
            }
            Ok(())
        })
        .map_err(|e| LabError::netlink(format!("sysctls of {netns}"), e))
}

/// The lab namespaces that exist, with the PID of the process that made
/// each (parsed from the name) and whether that process still runs.
pub fn lab_namespaces() -> Vec<(String, Option<u32>, bool)> {
    let Ok(dir) = std::fs::read_dir("/var/run/netns") else {
        return Vec::new();
    };
    let mut out: Vec<(String, Option<u32>, bool)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(PREFIX))
        .map(|n| {
            let pid = n[PREFIX.len()..]
                .split('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            (n, pid, alive)
        })
        .collect();
    out.sort();
    out
}

/// Deletes the lab namespaces whose process is gone (a lab that crashed or
/// was killed); returns the names this call deleted. Namespaces of running
/// labs stay. One that another cleaner (a lab starting in another process)
/// deleted between the listing and this call's delete is not an error.
pub fn clean_stale() -> Result<Vec<String>, LabError> {
    let mut removed = Vec::new();
    for (name, _, alive) in lab_namespaces() {
        if !alive {
            match run("ip", &["netns", "del", &name]) {
                Ok(_) => removed.push(name),
                Err(_) if !Path::new("/var/run/netns").join(&name).exists() => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masquerade_counter_is_read_from_nft_list() {
        let r = Ruleset {
            count_masquerade: true,
            ..Ruleset::default()
        };
        assert!(r.render(1).contains("oifname \"s*\" counter masquerade\n"));
        let listed = "table ip lab {\n\tchain postrouting {\n\t\ttype nat hook postrouting \
                      priority srcnat; policy accept;\n\t\toifname \"s*\" counter packets 40 \
                      bytes 1160 masquerade\n\t}\n}\n";
        assert_eq!(masquerade_counter(listed), Some(40));
        assert_eq!(
            masquerade_counter(&listed.replace("counter packets 40 bytes 1160 ", "")),
            None
        );
        assert_eq!(masquerade_counter("counter packets x masquerade"), None);
    }
}
