//! Ticket intake (受理) throughput: `Tickets::intake` with a realistic phone ticket, one at a time
//! and 64 at once, on SQLite always and on PostgreSQL when `TEST_DATABASE_URL` is set.
//!
//! ```text
//! cargo bench --bench intake
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench intake
//! ```
//!
//! Criterion reports throughput in elements per second, i.e. tickets per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use jiff::Timestamp;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::department::Directory;
use ticketing::model::{Location, PhoneNumber, Reporter};
use ticketing::sla::{Sla, SlaConfig};
use ticketing::testing::TestDb;
use ticketing::{Actor, Channel, Hotline, NewTicket, Priority, Role, Store, Tickets};

/// Tickets taken in at once by the concurrent case.
const CONCURRENCY: usize = 64;

/// The service wired as production wires it, with the shipped catalogue and department list.
fn tickets(store: Store) -> Tickets {
    let catalogue = Catalogue::from_toml(include_str!("../config/categories.toml"))
        .expect("config/categories.toml");
    let directory = Directory::from_toml(include_str!("../config/departments.toml"))
        .expect("config/departments.toml");
    let calendar = WorkCalendar::from_config(&CalendarConfig::default()).expect("calendar");
    let sla = Sla::new(calendar, SlaConfig::default(), &catalogue);
    let hotlines = vec![Hotline {
        number: "12319".into(),
        name: "城市管理服务热线".into(),
        aliases: vec![],
        hours: None,
    }];
    Tickets::new(store, sla, catalogue, directory, hotlines)
}

fn actor() -> Actor {
    Actor {
        id: 1,
        name: "bench".into(),
        role: Role::Agent,
        department: None,
    }
}

/// A call about a broken manhole cover, as an agent would key it in.
fn new_ticket() -> NewTicket {
    NewTicket {
        hotline: None,
        channel: Some(Channel::Phone),
        reporter: Reporter {
            name: Some("王先生".into()),
            phone: Some(PhoneNumber::parse("13812345678").expect("phone number")),
            ..Reporter::default()
        },
        content: "人民中路与解放北路交叉口东南角人行道上的上水井盖破损下陷，\
                  边缘翘起，晚上没有路灯看不清，已有行人踩空崴脚，请尽快派人修复。"
            .into(),
        category: Some("C0101".into()),
        location: Location {
            address: Some("梁溪区人民中路与解放北路交叉口东南角人行道".into()),
            lat: Some(31.5747),
            lon: Some(120.2986),
            grid_code: None,
        },
        priority: Priority::Normal,
        attachments: Vec::new(),
    }
}

/// The two cases on one database.
fn bench_store(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, store: Store) {
    let tickets = tickets(store);
    let actor = actor();

    // Fail loudly here rather than inside a measurement.
    rt.block_on(tickets.intake(new_ticket(), &actor, Timestamp::now()))
        .expect("intake works");

    group.throughput(Throughput::Elements(1));
    group.sampling_mode(SamplingMode::Auto);
    group.bench_function("sequential", |b| {
        let (t, a) = (&tickets, &actor);
        b.to_async(rt).iter(|| async move {
            let ticket = t
                .intake(new_ticket(), a, Timestamp::now())
                .await
                .expect("intake");
            black_box(ticket)
        });
    });

    // A batch takes tens of milliseconds: flat sampling keeps this case within its 5 s.
    group.throughput(Throughput::Elements(CONCURRENCY as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function(format!("concurrent_{CONCURRENCY}"), |b| {
        let (t, a) = (&tickets, &actor);
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Build the submissions outside the timed part; time from first spawn to last commit.
                let batch: Vec<NewTicket> = (0..CONCURRENCY).map(|_| new_ticket()).collect();
                let start = Instant::now();
                let mut set = JoinSet::new();
                for new in batch {
                    let (t, a) = (t.clone(), a.clone());
                    set.spawn(async move { t.intake(new, &a, Timestamp::now()).await });
                }
                while let Some(done) = set.join_next().await {
                    black_box(done.expect("task").expect("intake"));
                }
                total += start.elapsed();
            }
            total
        });
    });
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
}

fn intake(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    {
        let db = rt.block_on(TestDb::sqlite());
        let mut group = c.benchmark_group("intake/sqlite");
        configure(&mut group);
        bench_store(&mut group, &rt, db.store.clone());
        group.finish();
        rt.block_on(db.cleanup());
    }

    match rt.block_on(TestDb::postgres()) {
        Some(db) => {
            let mut group = c.benchmark_group("intake/postgres");
            configure(&mut group);
            bench_store(&mut group, &rt, db.store.clone());
            group.finish();
            rt.block_on(db.cleanup());
        }
        None => {
            eprintln!("intake/postgres: TEST_DATABASE_URL is not set; PostgreSQL cases skipped")
        }
    }
}

criterion_group!(benches, intake);
criterion_main!(benches);
