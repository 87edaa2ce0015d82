//! Connects the running daemon to the control socket (`status` answered from the
//! engine's state) and implements the `mptun status` client command.

use crate::cli::StatusArgs;
use crate::control::{self, ControlServer, Request, Response};
use crate::daemon::Runtime;
use crate::status::{connection_from_info, counters_from, ServiceStatus, Status};
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The control socket's serving task; dropping it stops serving and removes the
/// socket file.
pub struct ControlTask(tokio::task::JoinHandle<()>);

impl Drop for ControlTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn start(path: &Path, rt: Arc<Runtime>) -> io::Result<ControlTask> {
    let server = ControlServer::bind(path).await?;
    let task = tokio::spawn(server.serve(move |req| match req {
        Request::Status => Response::status(snapshot(&rt)),
    }));
    Ok(ControlTask(task))
}

/// The daemon's state as `mptun status` shows it.
pub fn snapshot(rt: &Runtime) -> Status {
    let s = rt.handle.lock();
    let connections = s
        .stack
        .connections()
        .into_iter()
        .filter_map(|id| s.stack.info(id).map(|info| connection_from_info(id, &info)))
        .collect();
    let services = rt
        .services
        .iter()
        .map(|svc| ServiceStatus {
            kind: svc.kind.to_string(),
            port: svc.port,
            connections: svc.connections.load(Ordering::Relaxed),
            bytes: svc.bytes.load(Ordering::Relaxed),
            sha256: svc
                .last_sha256
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        })
        .collect();
    Status {
        tun: rt.tun.clone(),
        addresses: s.stack.addresses().to_vec(),
        uptime_s: s.uptime().as_secs_f64(),
        connections,
        services,
        counters: counters_from(&s.stack.counters()),
    }
}

/// `mptun status`: ask a running daemon and print a table or JSON.
pub async fn status(args: StatusArgs) -> Result<(), String> {
    let status = control::fetch_status(&args.control_path())
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        let text = serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", status.render_table());
    }
    Ok(())
}
