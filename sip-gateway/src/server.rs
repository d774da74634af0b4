//! The SIP endpoint: listeners (UDP and TCP, TLS by config), the rsipstack endpoint and dialog
//! layer, and the loop that answers each incoming transaction — a new INVITE after the trunk,
//! routing, capacity, SDP and session-timer checks, anything in a dialog to that dialog,
//! OPTIONS keepalives, and clear refusals for the rest.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{HasHeaders, Header, HeadersExt, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::udp::UdpConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::call::{self, CallSetup};
use crate::config::Settings;
use crate::events::{CallEvent, CallStart, EndedBy};
use crate::ports::PortPool;
use crate::prompt::PromptCache;
use crate::queues::Queues;
use crate::routing::Routes;
use crate::sdp::{self, SessionDescription};
use crate::services::CallServices;
use crate::session_timer::{SessionTimer, TimerError, TimerRequest};
use crate::transport::GuardedUdp;
use crate::trunk::{Admission, Verdict};
use ivr::acd::AcdConfig;
use ivr::flow::{Calendar, Flow, Lang};

/// Methods we handle, for `Allow`.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK";

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("sip.{key}: cannot listen on {addr}: {source}")]
    Bind {
        /// Which setting.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be read or used.
    #[error("sip TLS: {0}")]
    Tls(String),
    /// The stack refused to start.
    #[error("SIP stack: {0}")]
    Stack(String),
}

/// What the gateway is given at start.
pub struct GatewayOptions {
    /// The checked `[sip]` settings.
    pub settings: Settings,
    /// Dialed numbers to hotlines.
    pub routes: Routes,
    /// Where recordings and prompts live.
    pub data_dir: PathBuf,
    /// Local time zone for the recordings' date folders.
    pub timezone: TimeZone,
    /// Where call events go (the binary writes them as call records).
    pub events: mpsc::UnboundedSender<CallEvent>,
    /// What callers hear and where they go: flows, business hours, ticket look-ups, queues.
    pub ivr: IvrOptions,
}

/// The IVR side of the gateway.
pub struct IvrOptions {
    /// Each hotline's flow, by hotline number (a hotline without one answers in silence).
    pub flows: BTreeMap<String, Flow>,
    /// Each hotline's business hours; a hotline not listed is always open.
    pub calendars: BTreeMap<String, Arc<dyn Calendar>>,
    /// Ticket status for the look-up node.
    pub services: Arc<dyn CallServices>,
    /// The call queues (ACD).
    pub queues: AcdConfig,
}

/// The IVR's runtime pieces, shared by every call.
pub(crate) struct Ivr {
    pub flows: BTreeMap<String, Flow>,
    calendars: BTreeMap<String, Arc<dyn Calendar>>,
    pub services: Arc<dyn CallServices>,
}

impl Ivr {
    /// The business hours of `hotline` (always open when none are configured).
    pub fn calendar(&self, hotline: &str) -> Arc<dyn Calendar> {
        match self.calendars.get(hotline) {
            Some(c) => c.clone(),
            None => Arc::new(|_: Timestamp| true),
        }
    }
}

/// State shared by the accept loop and every call.
pub(crate) struct Shared {
    pub settings: Settings,
    pub routes: Routes,
    pub admission: Admission,
    pub ports: PortPool,
    pub prompts: PromptCache,
    pub data_dir: PathBuf,
    pub timezone: TimeZone,
    pub events: mpsc::UnboundedSender<CallEvent>,
    pub ivr: Ivr,
    pub queues: Queues,
    pub active: AtomicUsize,
    pub dialogs: Arc<DialogLayer>,
    pub media_ip: IpAddr,
    pub contact: rsipstack::sip::Uri,
    pub sip_port: u16,
    pub cancel: CancellationToken,
    warned: Mutex<HashSet<PathBuf>>,
}

impl Shared {
    /// `<data_dir>/recordings`.
    pub fn recordings_root(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }

    /// `<data_dir>/prompts/<lang>/<name>.wav`, as `hotline prompts generate` writes them.
    pub fn prompt_path(&self, lang: Lang, name: &str) -> PathBuf {
        self.data_dir
            .join("prompts")
            .join(lang.code())
            .join(format!("{name}.wav"))
    }

    /// Logs a problem with a file once, not on every call.
    pub fn warn_once(&self, path: &Path, problem: &str) {
        if let Ok(mut w) = self.warned.lock()
            && w.insert(path.to_path_buf())
        {
            warn!(path = %path.display(), problem, "prompt unavailable; calls go on without it");
        }
    }
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Binds the listeners and starts answering.
    pub async fn start(options: GatewayOptions) -> Result<Gateway, StartError> {
        let settings = options.settings;
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.child_token());

        let udp_socket = bind_udp(settings.listen).map_err(|source| StartError::Bind {
            key: "listen",
            addr: settings.listen,
            source,
        })?;
        let udp_addr = udp_socket.local_addr().map_err(|source| StartError::Bind {
            key: "listen",
            addr: settings.listen,
            source,
        })?;
        let media_ip = settings
            .public_ip
            .unwrap_or_else(|| advertised_ip(udp_addr.ip()));
        let external =
            (media_ip != udp_addr.ip()).then(|| SocketAddr::new(media_ip, udp_addr.port()));
        let guarded: Arc<dyn rsipstack::platform::net::UdpSocket> =
            Arc::new(GuardedUdp::new(udp_socket));
        let udp = UdpConnection::from_socket(guarded, external, Some(cancel.child_token()))
            .await
            .map_err(|e| StartError::Stack(e.to_string()))?;
        transport.add_transport(udp.into());

        // TCP on the same port as UDP (the usual 5060 for both).
        let tcp_addr = SocketAddr::new(settings.listen.ip(), udp_addr.port());
        let tcp = rsipstack::transport::tcp_listener::TcpListenerConnection::new(tcp_addr, None)
            .await
            .map_err(|e| StartError::Stack(e.to_string()))?;
        // Probe that the port is free so a clash is reported at start, not swallowed.
        drop(
            std::net::TcpListener::bind(tcp_addr).map_err(|source| StartError::Bind {
                key: "listen",
                addr: tcp_addr,
                source,
            })?,
        );
        transport.add_transport(tcp.into());

        if let Some((addr, cert, key)) = &settings.tls {
            let _ = rustls_provider();
            let cert = std::fs::read(cert)
                .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
            let key = std::fs::read(key)
                .map_err(|e| StartError::Tls(format!("{}: {e}", key.display())))?;
            let config = rsipstack::transport::tls::TlsConfig {
                cert: Some(cert),
                key: Some(key),
                ..Default::default()
            };
            let tls = rsipstack::transport::tls::TlsListenerConnection::new(*addr, None, config)
                .await
                .map_err(|e| StartError::Tls(e.to_string()))?;
            transport.add_transport(tls.into());
        }

        let endpoint = EndpointBuilder::new()
            .with_user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
            .with_transport_layer(transport)
            .with_cancel_token(cancel.child_token())
            .with_allows(vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Info,
                Method::Update,
                Method::PRack,
            ])
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| StartError::Stack(e.to_string()))?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let contact = rsipstack::sip::Uri::try_from(
            format!("sip:hotline@{}", SocketAddr::new(media_ip, udp_addr.port())).as_str(),
        )
        .map_err(|e| StartError::Stack(e.to_string()))?;

        if settings.trunks.is_empty() {
            warn!("no [[sip.trunk]] configured: every INVITE will be refused (403)");
        }
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let IvrOptions {
            flows,
            calendars,
            services,
            queues,
        } = options.ivr;
        let queues = Queues::start(queues, options.events.clone())
            .map_err(|e| StartError::Stack(format!("queues: {e}")))?;
        let shared = Arc::new(Shared {
            ivr: Ivr {
                flows,
                calendars,
                services,
            },
            queues,
            admission: Admission::new(settings.trunks.clone(), "hotline", secret),
            ports: PortPool::new(settings.rtp_ports.clone()),
            prompts: PromptCache::new(),
            routes: options.routes,
            data_dir: options.data_dir,
            timezone: options.timezone,
            events: options.events,
            active: AtomicUsize::new(0),
            dialogs,
            media_ip,
            contact,
            sip_port: udp_addr.port(),
            cancel: cancel.clone(),
            warned: Mutex::new(HashSet::new()),
            settings,
        });

        // Load and resample every prompt a flow can play now, not on the first call.
        let mut loaded = 0;
        for flow in shared.ivr.flows.values() {
            for name in flow.prompt_names() {
                for lang in [Lang::Zh, Lang::En] {
                    let path = shared.prompt_path(lang, &name);
                    match shared.prompts.get(&path) {
                        Ok(_) => loaded += 1,
                        Err(e) => shared.warn_once(&path, &e.to_string()),
                    }
                }
            }
        }
        debug!(loaded, "prompts loaded");

        let serve_endpoint = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_endpoint.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        let task = tokio::spawn(accept_loop(shared.clone(), incoming));
        info!(udp = %udp_addr, tcp = %tcp_addr, media_ip = %media_ip, "SIP gateway listening");
        Ok(Gateway {
            shared,
            udp_addr,
            tcp_addr,
            task,
        })
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The TLS address, when TLS is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.shared.settings.tls.as_ref().map(|(a, _, _)| *a)
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// The call queues, for their live figures.
    pub fn queues(&self) -> Queues {
        self.shared.queues.clone()
    }

    /// Hangs up every call (BYE with Reason 503) and stops listening; waits up to `grace`.
    pub async fn shutdown(self, grace: std::time::Duration) {
        self.shared.cancel.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.active.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.task.abort();
    }
}

fn rustls_provider() -> Result<(), ()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| ())
}

/// A UDP socket with big buffers: a burst of 200 INVITEs must not overflow the kernel queue.
fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// The IP to advertise when bound to a wildcard: the first non-loopback interface address.
fn advertised_ip(bound: IpAddr) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    // Connecting a UDP socket sends nothing; it only picks the outgoing interface.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    mut incoming: rsipstack::transaction::TransactionReceiver,
) {
    loop {
        let tx = tokio::select! {
            tx = incoming.recv() => match tx {
                Some(tx) => tx,
                None => break,
            },
            () = shared.cancel.cancelled() => break,
        };
        let shared = shared.clone();
        tokio::spawn(async move { handle(shared, tx).await });
    }
}

fn has_to_tag(tx: &Transaction) -> bool {
    tx.original
        .to_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .is_some()
}

async fn handle(shared: Arc<Shared>, mut tx: Transaction) {
    let method = tx.original.method;
    let in_dialog = has_to_tag(&tx);
    match method {
        Method::Invite if !in_dialog => new_call(shared, tx).await,
        Method::Options if !in_dialog => {
            // SBC keepalives: answer on admitted sources only.
            let source = source_ip(&tx);
            let admitted = source.is_some_and(|ip| {
                matches!(
                    shared.admission.check(ip, "OPTIONS", None, unix_now()),
                    Verdict::Admit { .. } | Verdict::Challenge { .. }
                )
            });
            let status = if admitted {
                StatusCode::OK
            } else {
                StatusCode::Forbidden
            };
            let _ = tx.reply_with(status, allow_headers(), None).await;
        }
        Method::Register
        | Method::Subscribe
        | Method::Publish
        | Method::Message
        | Method::Refer
        | Method::Notify
            if !in_dialog =>
        {
            let _ = tx
                .reply_with(StatusCode::MethodNotAllowed, allow_headers(), None)
                .await;
        }
        _ => match shared.dialogs.match_dialog(&tx) {
            Some(mut dialog) => {
                if let Err(e) = dialog.handle(&mut tx).await {
                    debug!(error = %e, %method, "in-dialog request");
                }
            }
            None => {
                if method != Method::Ack {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                }
            }
        },
    }
}

fn allow_headers() -> Vec<Header> {
    vec![
        Header::Other("Allow".into(), ALLOW.into()),
        Header::Other("Accept".into(), "application/sdp".into()),
        Header::Other("Supported".into(), "timer".into()),
    ]
}

fn source_ip(tx: &Transaction) -> Option<IpAddr> {
    source_addr(tx).map(|a| a.ip())
}

fn source_addr(tx: &Transaction) -> Option<SocketAddr> {
    tx.connection
        .as_ref()?
        .get_remote_addr()?
        .get_socketaddr()
        .ok()
}

fn source_text(tx: &Transaction) -> String {
    match tx.connection.as_ref() {
        Some(c) => match c.get_remote_addr() {
            Some(a) => format!(
                "{}:{}",
                c.transport().to_string().to_ascii_lowercase(),
                a.addr
            ),
            None => c.transport().to_string().to_ascii_lowercase(),
        },
        None => String::new(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn header_value(tx: &Transaction, name: &str) -> Option<String> {
    tx.original.headers().iter().find_map(|h| {
        let text = h.to_string();
        let (n, v) = text.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Answers a final failure on an INVITE and keeps the transaction until it has its ACK.
async fn refuse(mut tx: Transaction, status: StatusCode, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(status, headers, None).await {
        debug!(error = %e, "sending the refusal failed");
        return;
    }
    while tx.receive().await.is_some() {}
}

async fn new_call(shared: Arc<Shared>, tx: Transaction) {
    let req = &tx.original;
    let call_id = req
        .call_id_header()
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let Some(source) = source_ip(&tx) else {
        return refuse(tx, StatusCode::BadRequest, vec![]).await;
    };

    // 1. Who is calling: a trunk, or nobody we know.
    let authorization = header_value(&tx, "Authorization");
    match shared
        .admission
        .check(source, "INVITE", authorization.as_deref(), unix_now())
    {
        Verdict::Admit { trunk } => {
            let span = tracing::info_span!("call", %call_id);
            admitted(shared, tx, call_id, trunk).instrument(span).await
        }
        Verdict::Challenge { www_authenticate } => {
            refuse(
                tx,
                StatusCode::Unauthorized,
                vec![Header::Other("WWW-Authenticate".into(), www_authenticate)],
            )
            .await
        }
        Verdict::Refuse { reason } => {
            warn!(%source, %call_id, reason, "INVITE refused");
            metrics::counter!("hotline_sip_refused_total", "reason" => reason).increment(1);
            refuse(tx, StatusCode::Forbidden, vec![]).await
        }
    }
}

async fn admitted(shared: Arc<Shared>, tx: Transaction, call_id: String, trunk: String) {
    let req = &tx.original;
    let dialed = req.uri.user().unwrap_or("").to_string();
    let from_uri = req
        .from_header()
        .ok()
        .and_then(|f| f.uri().ok())
        .map(|u| u.to_string())
        .unwrap_or_default();
    let from_number = req
        .from_header()
        .ok()
        .and_then(|f| f.uri().ok())
        .and_then(|u| u.user().map(str::to_string))
        .unwrap_or_default();
    let hotline = shared.routes.route(&dialed).map(str::to_string);
    let peer = source_addr(&tx);
    let _ = shared.events.send(CallEvent::Started(CallStart {
        call_id: call_id.clone(),
        hotline: hotline.clone(),
        from_number: from_number.clone(),
        from_uri,
        to_number: dialed.clone(),
        source: source_text(&tx),
        trunk: Some(trunk),
        at: Timestamp::now(),
    }));
    metrics::counter!("hotline_calls_offered_total").increment(1);
    let end = |code: u16, reason: &str| {
        let _ = shared.events.send(CallEvent::Ended {
            call_id: call_id.clone(),
            at: Timestamp::now(),
            ended_by: EndedBy::System,
            code,
            reason: reason.to_string(),
            language: None,
            recording_bytes: None,
            recording_ms: None,
        });
    };

    // 2. Which hotline.
    let Some(hotline) = hotline else {
        end(404, "number not in service");
        return refuse(tx, StatusCode::NotFound, vec![]).await;
    };

    // 3. Room for one more call (the slot is held until the call ends).
    let active = shared.active.fetch_add(1, Ordering::SeqCst) + 1;
    metrics::gauge!("hotline_calls_active").set(active as f64);
    let slot = Slot(shared.clone());
    if active > shared.settings.max_calls {
        metrics::counter!("hotline_calls_busy_total").increment(1);
        end(503, "all lines busy");
        drop(slot);
        return refuse(tx, StatusCode::ServiceUnavailable, retry_after(&shared)).await;
    }

    // 4. Media: the offer must be SDP we can answer (or absent: delayed offer).
    let content_type = header_value(&tx, "Content-Type").unwrap_or_default();
    let offer = if req.body().is_empty() {
        None
    } else if !content_type
        .to_ascii_lowercase()
        .starts_with("application/sdp")
    {
        end(415, "offer is not SDP");
        return refuse(
            tx,
            StatusCode::UnsupportedMediaType,
            vec![Header::Other("Accept".into(), "application/sdp".into())],
        )
        .await;
    } else {
        let text = String::from_utf8_lossy(req.body()).into_owned();
        let parsed = match SessionDescription::parse(&text) {
            Ok(p) => p,
            Err(e) => {
                end(400, "malformed SDP");
                return refuse(tx, StatusCode::BadRequest, vec![warning(&e.to_string())]).await;
            }
        };
        match sdp::negotiate(&parsed, &shared.settings.codecs) {
            Ok(neg) => Some((parsed, neg)),
            Err(e) => {
                end(488, "no acceptable media");
                return refuse(
                    tx,
                    StatusCode::NotAcceptableHere,
                    vec![warning(&e.to_string())],
                )
                .await;
            }
        }
    };

    // 5. Session timer.
    let se = header_value(&tx, "Session-Expires").or_else(|| header_value(&tx, "x"));
    let min_se = header_value(&tx, "Min-SE");
    let supported = header_value(&tx, "Supported")
        .or_else(|| header_value(&tx, "k"))
        .is_some_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("timer")));
    let timer_req = TimerRequest {
        session_expires: se.as_deref(),
        min_se: min_se.as_deref(),
        supported,
    };
    let timer = match SessionTimer::negotiate(
        &timer_req,
        shared.settings.session_expires,
        shared.settings.min_se,
        std::time::Instant::now(),
    ) {
        Ok(t) => t,
        Err(TimerError::TooSmall { min_se }) => {
            end(422, "session interval too small");
            return refuse(
                tx,
                StatusCode::SessionIntervalTooSmall,
                vec![Header::Other("Min-SE".into(), min_se.to_string())],
            )
            .await;
        }
        Err(TimerError::Malformed) => {
            end(400, "malformed Session-Expires");
            return refuse(
                tx,
                StatusCode::BadRequest,
                vec![warning("malformed Session-Expires or Min-SE")],
            )
            .await;
        }
    };

    // 6. Ports.
    let ports = match shared.ports.allocate(shared.media_ip_bind()) {
        Ok(p) => p,
        Err(e) => {
            warn!(%call_id, error = %e, "no RTP ports");
            end(503, "no RTP ports free");
            return refuse(tx, StatusCode::ServiceUnavailable, retry_after(&shared)).await;
        }
    };

    // 7. The dialog; rsipstack drives the INVITE transaction (100, retransmissions, ACK, CANCEL).
    let (state_tx, state_rx) = shared.dialogs.new_dialog_state_channel();
    // Over TCP or TLS the Contact says so, or in-dialog requests would come back over UDP.
    let mut contact = shared.contact.clone();
    if let Some(conn) = tx.connection.as_ref() {
        let transport = conn.transport();
        if transport != rsipstack::sip::Transport::Udp {
            if transport == rsipstack::sip::Transport::Tls {
                contact.scheme = Some(rsipstack::sip::Scheme::Sips);
            }
            if let Some(addr) = shared.listen_addr(transport) {
                contact.host_with_port = addr.into();
            }
            contact
                .params
                .push(rsipstack::sip::Param::Transport(transport));
        }
    }
    let dialog =
        match shared
            .dialogs
            .get_or_create_server_invite(&tx, state_tx, None, Some(contact))
        {
            Ok(d) => d,
            Err(e) => {
                warn!(%call_id, error = %e, "cannot create the dialog");
                end(500, "dialog creation failed");
                return refuse(tx, StatusCode::ServerInternalError, vec![]).await;
            }
        };
    let dialog_id = dialog.id();
    let mut driver = dialog.clone();
    let mut tx = tx;
    let transaction = tokio::spawn(async move {
        let _ = driver.handle(&mut tx).await;
    });
    call::run(CallSetup {
        shared: shared.clone(),
        dialog,
        states: state_rx,
        call_id,
        hotline,
        offer,
        timer,
        ports,
        caller: Some(from_number).filter(|n| !n.is_empty()),
        peer,
    })
    .await;
    shared.dialogs.remove_dialog(&dialog_id);
    drop(slot);
    let _ = transaction.await;
}

impl Shared {
    /// Where we listen for a stream transport, as advertised (the media IP, that listener's port).
    fn listen_addr(&self, transport: rsipstack::sip::Transport) -> Option<SocketAddr> {
        match transport {
            rsipstack::sip::Transport::Tls => self
                .settings
                .tls
                .as_ref()
                .map(|(a, _, _)| SocketAddr::new(self.media_ip, a.port())),
            _ => Some(SocketAddr::new(self.media_ip, self.sip_port)),
        }
    }

    /// The address RTP sockets bind to: the SIP listen address (a wildcard binds every interface).
    /// Never `public_ip`, which behind NAT is not an address of this host.
    pub fn media_ip_bind(&self) -> IpAddr {
        self.settings.listen.ip()
    }
}

/// Holds one of `max_calls`; released when dropped.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        let left = self
            .0
            .active
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        metrics::gauge!("hotline_calls_active").set(left as f64);
    }
}

/// `Retry-After` for a 503: when to try again.
fn retry_after(shared: &Shared) -> Vec<Header> {
    vec![Header::Other(
        "Retry-After".into(),
        shared.settings.retry_after.to_string(),
    )]
}

/// A `Warning: 399` header naming the problem (quotes and control characters removed).
pub(crate) fn warning(text: &str) -> Header {
    let text: String = text
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    Header::Other("Warning".into(), format!("399 hotline \"{text}\""))
}
