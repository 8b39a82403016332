//! `local-gateway`: runs the whole system on one machine.
//!
//!   local-gateway serve [--port 8000] [--host 127.0.0.1]   the gateway and the handlers in-process
//!   local-gateway migrate                                   applies migrations/ to DATABASE_URL
//!   local-gateway archive                                   moves old messages to ARCHIVE_BUCKET
//!   local-gateway token --user ID [--tenant ID] [--name N] [--ttl SECONDS]
//!                                                           prints a development JWT

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use shared::store::Store;
use shared::Config;

const USAGE: &str = "usage: local-gateway serve [--host H] [--port P] | migrate | archive | token --user ID [--tenant ID] [--name NAME] [--ttl SECONDS]";

fn options(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        map.insert(name.to_string(), value.clone());
    }
    Ok(map)
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let (command, rest) = args.split_first().map_or(("serve", &[][..]), |(c, r)| (c.as_str(), r));
    let opts = options(rest)?;
    match command {
        "serve" => {
            let config = Config::load().await.map_err(|e| e.to_string())?;
            let host = opts.get("host").map_or("127.0.0.1", String::as_str);
            let port = opts.get("port").map_or("8000", String::as_str);
            let bind: SocketAddr = format!("{host}:{port}").parse().map_err(|e| format!("bad address: {e}"))?;
            let running = gateway::start(config, bind).await.map_err(|e| e.to_string())?;
            println!("local gateway listening on http://{}", running.addr);
            println!("  WebSocket:       ws://{}/api/v1/ws/chat?token=JWT", running.addr);
            println!("  management API:  {}/@connections/{{connection_id}}", running.management_endpoint());
            println!("  a token:         local-gateway token --tenant acme --user alice --name Alice");
            running.wait().await;
            Ok(())
        }
        "migrate" => {
            let config = Config::load().await.map_err(|e| e.to_string())?;
            // Migrations may rewrite large tables: no statement timeout worth the name.
            let store =
                Store::connect(&config.database_url, 1, std::time::Duration::from_secs(3600), config.db_statements)
                    .map_err(|e| e.to_string())?;
            let applied = store.migrate().await.map_err(|e| e.to_string())?;
            if applied.is_empty() {
                println!("migrations: up to date");
            } else {
                println!("migrations applied: {}", applied.join(", "));
            }
            Ok(())
        }
        "archive" => {
            let service = shared::ChatService::from_env().await.map_err(|e| e.to_string())?;
            let report = service.archive_old_messages().await.map_err(|e| e.to_string())?;
            println!(
                "archived {} messages of {} rooms into {} room-months",
                report.messages, report.rooms, report.months
            );
            Ok(())
        }
        "token" => {
            let secret = std::env::var("JWT_SECRET_KEY").map_err(|_| "JWT_SECRET_KEY is required".to_string())?;
            let user = opts.get("user").ok_or("--user is required")?;
            let tenant = opts.get("tenant").map_or("acme", String::as_str);
            let ttl: i64 = opts.get("ttl").map_or(Ok(86_400), |t| t.parse()).map_err(|e| format!("--ttl: {e}"))?;
            println!("{}", shared::auth::mint(&secret, tenant, user, opts.get("name").map(String::as_str), ttl));
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init();
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-gateway: {err}");
            ExitCode::FAILURE
        }
    }
}
