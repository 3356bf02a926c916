//! A lab: `up` builds it, [`Lab::load`] finds it again from its state
//! file, and the methods change it the way a cluster changes (pods come
//! and go, nodes join and leave, daemons restart).

use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::state::{LabConfig, NodeState, Pod, State};
use crate::topo::{self, Advertise, NodePlan, Routing};
use crate::{agent, api, check, down, frr, net, pods, procs, table};

/// How long any one step may take before the lab gives up.
pub const STEP_LIMIT: Duration = Duration::from_secs(60);

/// What `up` builds.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub routing: Routing,
    pub advertise: Advertise,
    pub nodes: usize,
    pub pods_per_node: usize,
    pub dual_stack: bool,
    /// ferryd's eBPF fast path (`--fast-path`).
    pub fast_path: bool,
    /// A real Kubernetes instead of the test API server (see [`crate::kube`]).
    pub kubernetes: Option<crate::kube::KubeOptions>,
    /// Node segments behind the router (1 or 2; see [`topo::node_plan_in`]).
    pub subnets: usize,
    /// ferryd's `--encapsulation` (`never`, `cross-subnet`, `always`);
    /// `None`: ferryd's default.
    pub encapsulation: Option<String>,
    /// ferryd's `--encryption` (`none`, `wireguard`); `None`: ferryd's
    /// default (none).
    pub encryption: Option<String>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            routing: Routing::Ospf,
            advertise: Advertise::Aggregate,
            nodes: 3,
            pods_per_node: 1,
            dual_stack: false,
            fast_path: true,
            kubernetes: None,
            subnets: 1,
            encapsulation: None,
            encryption: None,
        }
    }
}

/// A running lab.
#[derive(Debug)]
pub struct Lab {
    pub cfg: LabConfig,
    pub state: State,
    started: Instant,
}

impl Lab {
    /// Builds the lab (see the crate docs), leaving it running. A failure
    /// leaves what was made for `down` (the state file is written first).
    pub fn up(cfg: LabConfig, opts: &UpOptions) -> Result<Lab> {
        topo::check_prefix(&cfg.prefix).map_err(LabError::Invalid)?;
        if !(1..=topo::MAX_NODES).contains(&opts.nodes) {
            return Err(LabError::Invalid(format!(
                "--nodes: 1..={}",
                topo::MAX_NODES
            )));
        }
        if !(1..=topo::MAX_SUBNETS).contains(&opts.subnets) {
            return Err(LabError::Invalid(format!(
                "--subnets: 1..={}",
                topo::MAX_SUBNETS
            )));
        }
        if opts.kubernetes.is_some() {
            crate::kube::validate(opts)?;
        }
        if cfg.state_file().exists() {
            return Err(LabError::AlreadyUp {
                prefix: cfg.prefix.clone(),
                path: cfg.state_file(),
            });
        }
        for bin in ["ferryd", "ferry-apiserver", "ferry", "ferry-ipam"] {
            cfg.binary(bin)?;
        }
        if opts.encryption.as_deref() == Some("wireguard") {
            // ferryd starts it from its own directory (this kernel has no
            // WireGuard).
            cfg.binary("ferry-wg")?;
        }
        let cni_version = pods::reference_cni_version()?;
        let mut lab = Lab {
            state: State {
                prefix: cfg.prefix.clone(),
                routing: opts.routing,
                advertise: opts.advertise,
                dual_stack: opts.dual_stack,
                fast_path: opts.fast_path,
                nodes: Vec::new(),
                pods: Vec::new(),
                apiserver: None,
                next_pod: 1,
                converged_s: None,
                cni_version,
                kubernetes: opts.kubernetes.is_some(),
                subnets: opts.subnets,
                encapsulation: opts.encapsulation.clone(),
                encryption: opts.encryption.clone(),
            },
            cfg,
            started: Instant::now(),
        };
        let left = down::leftovers(&lab.cfg);
        if !left.is_empty() {
            lab.say(&format!(
                "removing leftovers of an earlier lab: {}",
                left.join(", ")
            ));
            down::down(&lab.cfg)?;
        }
        lab.save()?;
        if let Some(k) = &opts.kubernetes {
            let (started, quiet) = (lab.started, lab.cfg.quiet);
            let say = move |m: &str| {
                if !quiet {
                    eprintln!("[{:6.2}s] {m}", started.elapsed().as_secs_f64());
                }
            };
            let k = k.clone();
            crate::kube::up(
                &lab.cfg,
                &mut lab.state,
                opts.nodes,
                opts.pods_per_node,
                &k,
                &say,
            )?;
            return Ok(lab);
        }
        let bpf = lab.cfg.bpf_dir();
        std::fs::create_dir_all(&bpf)
            .map_err(|e| LabError::Invalid(format!("{}: {e}", bpf.display())))?;
        ferry_ebpf::ensure_bpffs(&bpf).map_err(|e| LabError::Invalid(e.to_string()))?;
        lab.say(&format!(
            "ferryd's conflist will say cniVersion {} (what {}/portmap takes)",
            lab.state.cni_version,
            agent::REFERENCE_PLUGIN_DIR
        ));
        net::build_fixed(&lab.cfg.prefix, opts.dual_stack, opts.subnets)?;
        lab.say(if opts.subnets > 1 {
            "switch (2 segments), router 172.16.97.1 + 172.16.98.1 and internet host 203.0.113.10 cabled"
        } else {
            "switch, router 172.16.97.1 and internet host 203.0.113.10 cabled"
        });
        for i in 0..opts.nodes {
            let plan = topo::node_plan_in(&lab.cfg.prefix, i, opts.dual_stack, opts.subnets);
            net::add_node(&lab.cfg.prefix, &plan)?;
            lab.state.nodes.push(NodeState { plan, ferryd: None });
            lab.save()?;
        }
        lab.say(&format!("{} node namespaces on the switch", opts.nodes));
        let plans: Vec<NodePlan> = lab.plans();
        lab.state.apiserver = Some(api::start(&lab.cfg, &plans)?);
        lab.save()?;
        lab.say("API server up on https://172.16.97.1:6443 with the Node objects");
        agent::write_secrets(&lab.cfg)?;
        if opts.routing.uses_frr() {
            let daemons = frr::daemons(opts.routing, opts.dual_stack);
            // A restart state left by an FRR that is gone (a crashed lab)
            // would start this lab's first ospfd as a restarting router.
            crate::down::remove_unused_shared_files();
            for r in check::parallel(&plans, 4, |n| {
                frr::start(&n.netns, &n.netns, &n.name, &daemons)
            }) {
                r?;
            }
            lab.say(&format!("FRR ({}) in every node", daemons.join(", ")));
        }
        let t0 = Instant::now();
        for i in 0..lab.state.nodes.len() {
            let plan = lab.state.nodes[i].plan.clone();
            lab.state.nodes[i].ferryd = Some(agent::start(&lab.cfg, &lab.state, &plan)?);
            lab.save()?;
        }
        lab.wait_agents_ready()?;
        lab.say(&format!(
            "ferryd ready on every node ({:.2} s)",
            t0.elapsed().as_secs_f64()
        ));
        lab.add_pods_round_robin(opts.pods_per_node)?;
        lab.say(&format!(
            "{} pods made through the installed conflist",
            lab.state.pods.len()
        ));
        if lab.state.subnets > 1 && lab.state.encapsulation.as_deref() == Some("never") {
            lab.say("not waiting for the pod mesh: --encapsulation never across subnets cannot route it");
            return Ok(lab);
        }
        lab.wait_converged(STEP_LIMIT)?;
        lab.state.converged_s = Some(t0.elapsed().as_secs_f64());
        lab.save()?;
        lab.say(&format!(
            "converged: every pod reaches every other node's pods ({:.2} s after ferryd started)",
            t0.elapsed().as_secs_f64()
        ));
        Ok(lab)
    }

    /// The lab that is up for `cfg`.
    pub fn load(cfg: LabConfig) -> Result<Lab> {
        let state = State::load(&cfg)?;
        Ok(Lab {
            state,
            cfg,
            started: Instant::now(),
        })
    }

    pub fn save(&self) -> Result<()> {
        self.state.save(&self.cfg)
    }

    /// A progress line on stderr (`[  1.23s] ...`) unless quiet.
    pub fn say(&self, msg: &str) {
        if !self.cfg.quiet {
            eprintln!("[{:6.2}s] {msg}", self.started.elapsed().as_secs_f64());
        }
    }

    pub fn plans(&self) -> Vec<NodePlan> {
        self.state.nodes.iter().map(|n| n.plan.clone()).collect()
    }

    pub fn node(&self, name: &str) -> Result<NodePlan> {
        self.state
            .node(name)
            .map(|n| n.plan.clone())
            .ok_or_else(|| LabError::Invalid(format!("no node {name} in the lab")))
    }

    fn wait_agents_ready(&self) -> Result<()> {
        let nodes: Vec<(NodePlan, procs::Proc)> = self
            .state
            .nodes
            .iter()
            .filter_map(|n| Some((n.plan.clone(), n.ferryd?)))
            .collect();
        for r in check::parallel(&nodes, 8, |(plan, p)| {
            agent::wait_ready(&self.cfg, plan, *p, STEP_LIMIT)
        }) {
            r?;
        }
        Ok(())
    }

    fn next_pod_name(&mut self) -> String {
        let name = format!("pod-{}", self.state.next_pod);
        self.state.next_pod += 1;
        name
    }

    /// `k` pods per node, named round-robin (pod-1 on the first node,
    /// pod-2 on the second, ...), made in parallel across nodes.
    pub fn add_pods_round_robin(&mut self, k: usize) -> Result<()> {
        let mut jobs: Vec<(NodePlan, Vec<String>)> =
            self.plans().into_iter().map(|p| (p, Vec::new())).collect();
        for _ in 0..k {
            for job in &mut jobs {
                let name = format!("pod-{}", self.state.next_pod);
                self.state.next_pod += 1;
                job.1.push(name);
            }
        }
        let cfg = &self.cfg;
        let made = check::parallel(&jobs, 8, |(node, names)| {
            names
                .iter()
                .map(|n| pods::add(cfg, node, n, None))
                .collect::<Vec<_>>()
        });
        let mut first_err = None;
        for r in made.into_iter().flatten() {
            match r {
                Ok(pod) => self.state.pods.push(pod),
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        self.state.pods.sort_by_key(|p| pod_number(&p.name));
        self.save()?;
        first_err.map_or(Ok(()), Err)
    }

    /// A new pod on `node` (named `pod-N`, or `name`), with `static_ips`
    /// when given.
    pub fn add_pod(
        &mut self,
        node: &str,
        name: Option<&str>,
        static_ips: Option<&[String]>,
    ) -> Result<Pod> {
        let plan = self.node(node)?;
        let name = match name {
            Some(n) => n.to_string(),
            None => self.next_pod_name(),
        };
        let pod = pods::add(&self.cfg, &plan, &name, static_ips)?;
        self.state.pods.push(pod.clone());
        self.save()?;
        Ok(pod)
    }

    /// Deletes a pod (CNI DEL, then its netns).
    pub fn delete_pod(&mut self, name: &str) -> Result<Pod> {
        let pod = self
            .state
            .pod(name)
            .cloned()
            .ok_or_else(|| LabError::Invalid(format!("no pod {name}")))?;
        let plan = self.node(&pod.node)?;
        let r = pods::delete(&self.cfg, &plan, &pod);
        self.state.pods.retain(|p| p.name != name);
        self.save()?;
        r.map(|()| pod)
    }

    /// Starts ferryd on `node` and waits until it is ready.
    pub fn start_agent(&mut self, node: &str) -> Result<()> {
        let plan = self.node(node)?;
        let p = agent::start(&self.cfg, &self.state, &plan)?;
        if let Some(n) = self.state.node_mut(node) {
            n.ferryd = Some(p);
        }
        self.save()?;
        agent::wait_ready(&self.cfg, &plan, p, STEP_LIMIT)
    }

    /// Stops ferryd on `node`: SIGTERM as kubelet does, or SIGKILL.
    pub fn stop_agent(&mut self, node: &str, crash: bool) -> Result<()> {
        let proc = self.state.node(node).and_then(|n| n.ferryd);
        if let Some(p) = proc {
            if crash {
                p.crash();
            } else {
                p.stop(Duration::from_secs(10));
            }
        }
        if let Some(n) = self.state.node_mut(node) {
            n.ferryd = None;
        }
        self.save()
    }

    /// Starts the node's FRR daemons (its pathspace's config as on disk).
    pub fn start_frr(&self, node: &str) -> Result<()> {
        let plan = self.node(node)?;
        let daemons = frr::daemons(self.state.routing, self.state.dual_stack);
        frr::start(&plan.netns, &plan.netns, &plan.name, &daemons)
    }

    /// Stops the node's FRR daemons (files stay, as after a crash).
    pub fn stop_frr(&self, node: &str) -> Result<usize> {
        Ok(frr::stop(&self.node(node)?.netns))
    }

    /// Kills FRR's daemons on `node` as its container's end would (see
    /// [`frr::kill`]).
    pub fn kill_frr(&self, node: &str) -> Result<usize> {
        Ok(frr::kill(&self.node(node)?.netns))
    }

    /// Stops the API server (an outage).
    pub fn stop_api(&mut self) -> Result<()> {
        if let Some(p) = self.state.apiserver.take() {
            p.stop(Duration::from_secs(10));
        }
        self.save()
    }

    /// Starts it again: same state dir, same CA, token and cluster.
    pub fn start_api(&mut self) -> Result<()> {
        let p = api::start(&self.cfg, &self.plans())?;
        self.state.apiserver = Some(p);
        self.save()
    }

    /// A new node joins: netns on the switch, FRR, its Node object in the
    /// API, ferryd (ready), as kubeadm join + the DaemonSet would.
    pub fn join_node(&mut self) -> Result<NodePlan> {
        let index = self
            .state
            .nodes
            .iter()
            .map(|n| n.plan.index + 1)
            .max()
            .unwrap_or(0);
        if index >= topo::MAX_NODES {
            return Err(LabError::Invalid("no more node addresses".into()));
        }
        let plan = topo::node_plan_in(
            &self.cfg.prefix,
            index,
            self.state.dual_stack,
            self.state.subnets,
        );
        net::add_node(&self.cfg.prefix, &plan)?;
        self.state.nodes.push(NodeState {
            plan: plan.clone(),
            ferryd: None,
        });
        self.save()?;
        if self.state.routing.uses_frr() {
            self.start_frr(&plan.name)?;
        }
        api::add_node(&self.cfg, &plan)?;
        self.start_agent(&plan.name)?;
        Ok(plan)
    }

    /// A node leaves: its Node object is deleted (kubectl delete node),
    /// then the machine goes away (ferryd, FRR, pods, netns).
    pub fn remove_node(&mut self, name: &str) -> Result<()> {
        let plan = self.node(name)?;
        api::delete_node(&self.cfg, name)?;
        self.stop_agent(name, false)?;
        if self.state.routing.uses_frr() {
            frr::remove(&plan.netns)?;
        }
        let gone: Vec<Pod> = self
            .state
            .pods
            .iter()
            .filter(|p| p.node == name)
            .cloned()
            .collect();
        for p in &gone {
            net::delete(&p.netns)?;
        }
        net::delete(&plan.netns)?;
        self.state.pods.retain(|p| p.node != name);
        self.state.nodes.retain(|n| n.plan.name != name);
        let _ = std::fs::remove_dir_all(self.cfg.node_dir(name));
        self.save()
    }

    /// See [`check::wait_converged`].
    pub fn wait_converged(&self, limit: Duration) -> Result<Duration> {
        check::wait_converged(&self.state, limit)
    }

    /// The full check; an error listing every failed probe.
    pub fn check(&self) -> Result<check::Report> {
        check::run(&self.cfg, &self.state)?.into_result()
    }

    /// The picture-like table.
    pub fn table(&self) -> String {
        table::render(&self.state)
    }
}

fn pod_number(name: &str) -> usize {
    name.strip_prefix("pod-")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Runs `down` when dropped: tests hold one so the lab goes even when an
/// assertion fails.
pub struct DownGuard(pub LabConfig);

impl Drop for DownGuard {
    fn drop(&mut self) {
        if let Err(e) = down::down(&self.0) {
            eprintln!("ferry-lab down ({}): {e}", self.0.prefix);
        }
    }
}
