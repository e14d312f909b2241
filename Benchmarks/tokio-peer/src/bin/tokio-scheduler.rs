//! tokio's six runtime benchmarks (`benches/rt_multi_threaded.rs`), shaped as `iopool bench
//! scheduler` runs them, so the two can be compared number for number: the same counts
//! (NUM_SPAWN 10,000, TASKS 200 × NUM_YIELD 1,000, NUM_PINGS 1,000, ITER 1,000, STALL_DUR 10 µs),
//! the same task graph per benchmark (a "local" spawn is made from a task of the runtime, a
//! "remote" one from outside it; busy1 keeps 2 × threads background tasks yielding and stalling),
//! one warm-up iteration, then the median wall time of `--iterations` iterations.
//!
//! Differences from tokio's own benches, on purpose: tokio's `spawn_many_local` (as of the
//! versions read for this) spawns from `block_on`, which on a multi-thread runtime is not a
//! worker, so its spawns go to the inject queue; here, as in our bench, it spawns from a task. Completion is signalled the way our bench does (an atomic
//! countdown, then a oneshot/std channel), not with criterion.
//!
//! usage: tokio-scheduler [--threads N] [--iterations N] [--only NAME]... [--flavor multi|current|both]
//!                        [--format table|us]
//! `--format us` prints only the median µs of each benchmark, one number per line, in the order
//! run: the contract of `iopool bench scheduler --peer` (one benchmark per call).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;

const NUM_SPAWN: usize = 10_000;
const TASKS: usize = 200;
const NUM_YIELD: usize = 1_000;
const NUM_PINGS: usize = 1_000;
const ITER: usize = 1_000;
const STALL_DUR: Duration = Duration::from_micros(10);

const BENCHMARKS: [&str; 6] = [
    "spawn_many_local",
    "spawn_many_remote_idle",
    "spawn_many_remote_busy1",
    "yield_many",
    "ping_pong",
    "chained_spawn",
];

/// One iteration of `name` on `rt`; returns its wall time.
fn run_once(name: &str, rt: &Runtime, threads: usize) -> Duration {
    let start = Instant::now();
    match name {
        "spawn_many_local" => {
            let (tx, rx) = mpsc::sync_channel(1);
            let rem = Arc::new(AtomicUsize::new(NUM_SPAWN));
            rt.spawn(async move {
                for _ in 0..NUM_SPAWN {
                    let tx = tx.clone();
                    let rem = rem.clone();
                    tokio::spawn(async move {
                        if rem.fetch_sub(1, Relaxed) == 1 {
                            tx.send(()).unwrap();
                        }
                    });
                }
            });
            rx.recv().unwrap();
        }
        "spawn_many_remote_idle" => {
            let handles: Vec<_> = (0..NUM_SPAWN).map(|_| rt.spawn(async {})).collect();
            rt.block_on(async {
                for handle in handles {
                    handle.await.unwrap();
                }
            });
        }
        "spawn_many_remote_busy1" => {
            let busy = Arc::new(AtomicBool::new(true));
            let background: Vec<_> = (0..2 * threads)
                .map(|_| {
                    let busy = busy.clone();
                    rt.spawn(async move {
                        while busy.load(Relaxed) {
                            tokio::task::yield_now().await;
                            stall();
                        }
                    })
                })
                .collect();
            let measured = Instant::now();
            let handles: Vec<_> = (0..NUM_SPAWN).map(|_| rt.spawn(async {})).collect();
            rt.block_on(async {
                for handle in handles {
                    handle.await.unwrap();
                }
            });
            let elapsed = measured.elapsed();
            busy.store(false, Relaxed);
            rt.block_on(async {
                for task in background {
                    task.await.unwrap();
                }
            });
            return elapsed;
        }
        "yield_many" => {
            let (tx, rx) = mpsc::sync_channel(1);
            let rem = Arc::new(AtomicUsize::new(TASKS));
            for _ in 0..TASKS {
                let tx = tx.clone();
                let rem = rem.clone();
                rt.spawn(async move {
                    for _ in 0..NUM_YIELD {
                        tokio::task::yield_now().await;
                    }
                    if rem.fetch_sub(1, Relaxed) == 1 {
                        tx.send(()).unwrap();
                    }
                });
            }
            rx.recv().unwrap();
        }
        "ping_pong" => {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            let rem = Arc::new(AtomicUsize::new(NUM_PINGS));
            rt.spawn(async move {
                for _ in 0..NUM_PINGS {
                    let rem = rem.clone();
                    let done_tx = done_tx.clone();
                    tokio::spawn(async move {
                        let (tx1, rx1) = oneshot::channel::<()>();
                        let (tx2, rx2) = oneshot::channel::<()>();
                        tokio::spawn(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        });
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if rem.fetch_sub(1, Relaxed) == 1 {
                            done_tx.send(()).unwrap();
                        }
                    });
                }
            });
            done_rx.recv().unwrap();
        }
        "chained_spawn" => {
            fn link(done: mpsc::SyncSender<()>, remaining: usize) {
                if remaining == 0 {
                    done.send(()).unwrap();
                } else {
                    tokio::spawn(async move { link(done, remaining - 1) });
                }
            }
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            rt.spawn(async move { link(done_tx, ITER) });
            done_rx.recv().unwrap();
        }
        _ => unreachable!(),
    }
    start.elapsed()
}

/// Busy-waits 10 µs yielding the OS thread, as tokio's `stall()`.
fn stall() {
    let end = Instant::now() + STALL_DUR;
    while Instant::now() < end {
        std::thread::yield_now();
    }
}

fn runtime(flavor: &str, threads: usize) -> Runtime {
    match flavor {
        "multi" => Builder::new_multi_thread().worker_threads(threads).build().unwrap(),
        // current-thread: the runtime runs only inside block_on, so each iteration is driven by
        // block_on on the main thread (see run_current).
        _ => Builder::new_current_thread().build().unwrap(),
    }
}

/// On a current-thread runtime nothing runs outside `block_on`: the iteration's own waits
/// (`rx.recv()`) would block the only thread. So the whole iteration runs inside `block_on`, the
/// main thread's waits turned into awaits.
fn run_current(name: &str, rt: &Runtime, threads: usize) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        match name {
            "spawn_many_local" | "spawn_many_remote_idle" => {
                let handles: Vec<_> = (0..NUM_SPAWN).map(|_| tokio::spawn(async {})).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }
            "spawn_many_remote_busy1" => {
                let busy = Arc::new(AtomicBool::new(true));
                let background: Vec<_> = (0..2 * threads)
                    .map(|_| {
                        let busy = busy.clone();
                        tokio::spawn(async move {
                            while busy.load(Relaxed) {
                                tokio::task::yield_now().await;
                                stall();
                            }
                        })
                    })
                    .collect();
                let measured = Instant::now();
                let handles: Vec<_> = (0..NUM_SPAWN).map(|_| tokio::spawn(async {})).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
                let elapsed = measured.elapsed();
                busy.store(false, Relaxed);
                for task in background {
                    task.await.unwrap();
                }
                return elapsed;
            }
            "yield_many" => {
                let handles: Vec<_> = (0..TASKS)
                    .map(|_| {
                        tokio::spawn(async {
                            for _ in 0..NUM_YIELD {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }
            "ping_pong" => {
                let (done_tx, done_rx) = oneshot::channel::<()>();
                let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
                let rem = Arc::new(AtomicUsize::new(NUM_PINGS));
                for _ in 0..NUM_PINGS {
                    let rem = rem.clone();
                    let done_tx = done_tx.clone();
                    tokio::spawn(async move {
                        let (tx1, rx1) = oneshot::channel::<()>();
                        let (tx2, rx2) = oneshot::channel::<()>();
                        tokio::spawn(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        });
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if rem.fetch_sub(1, Relaxed) == 1 {
                            done_tx.lock().unwrap().take().unwrap().send(()).unwrap();
                        }
                    });
                }
                done_rx.await.unwrap();
            }
            "chained_spawn" => {
                fn link(done: oneshot::Sender<()>, remaining: usize) {
                    if remaining == 0 {
                        done.send(()).unwrap();
                    } else {
                        tokio::spawn(async move { link(done, remaining - 1) });
                    }
                }
                let (done_tx, done_rx) = oneshot::channel();
                tokio::spawn(async move { link(done_tx, ITER) });
                done_rx.await.unwrap();
            }
            _ => unreachable!(),
        }
        start.elapsed()
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn usage(message: &str) -> ! {
    eprintln!("tokio-scheduler: {message}");
    eprintln!("usage: tokio-scheduler [--threads N] [--iterations N] [--only NAME]... [--flavor multi|current|both] [--format table|us]");
    std::process::exit(2);
}

fn main() {
    let mut threads = 2usize;
    let mut iterations = 21usize;
    let mut only: Vec<String> = Vec::new();
    let mut flavor = "multi".to_string();
    let mut format = "table".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--threads" => threads = value().parse().ok().filter(|&n| n >= 1).unwrap_or_else(|| usage("--threads: a whole number ≥ 1")),
            "--iterations" => {
                iterations = value().parse().ok().filter(|&n| n >= 1).unwrap_or_else(|| usage("--iterations: a whole number ≥ 1"))
            }
            "--only" => {
                let name = value();
                if !BENCHMARKS.contains(&name.as_str()) {
                    usage(&format!("--only: unknown benchmark '{name}' (known: {})", BENCHMARKS.join(", ")));
                }
                only.push(name);
            }
            "--flavor" => {
                flavor = value();
                if !["multi", "current", "both"].contains(&flavor.as_str()) {
                    usage("--flavor: multi, current or both");
                }
            }
            "--format" => {
                format = value();
                if !["table", "us"].contains(&format.as_str()) {
                    usage("--format: table or us");
                }
            }
            _ => usage(&format!("unknown argument '{arg}'")),
        }
    }
    let benchmarks: Vec<&str> = if only.is_empty() { BENCHMARKS.to_vec() } else { BENCHMARKS.iter().copied().filter(|b| only.iter().any(|o| o == b)).collect() };
    let flavors: Vec<&str> = if flavor == "both" { vec!["multi", "current"] } else { vec![flavor.as_str()] };
    let runtimes: Vec<Runtime> = flavors.iter().map(|f| runtime(f, threads)).collect();
    let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
    for name in &benchmarks {
        // Flavours interleaved per iteration, as `iopool bench scheduler` interleaves runtimes;
        // iteration 0 warms up.
        let mut samples = vec![Vec::new(); runtimes.len()];
        for round in 0..=iterations {
            for (index, rt) in runtimes.iter().enumerate() {
                let elapsed = if flavors[index] == "multi" { run_once(name, rt, threads) } else { run_current(name, rt, threads) };
                if round > 0 {
                    samples[index].push(elapsed.as_secs_f64() * 1e6);
                }
            }
        }
        rows.push((name, samples.into_iter().map(median).collect()));
    }
    if format == "us" {
        for (_, medians) in &rows {
            println!("{:.1}", medians[0]);
        }
        return;
    }
    println!("scheduler (tokio 1.24): median µs per iteration, {iterations} iterations, {threads} threads");
    let labels: Vec<String> = flavors.iter().map(|f| if *f == "multi" { "tokio multi-thread".to_string() } else { "tokio current-thread".to_string() }).collect();
    println!("{:<24}{}", "benchmark", labels.iter().map(|l| format!("{l:<22}")).collect::<String>());
    for (name, medians) in &rows {
        println!("{:<24}{}", name, medians.iter().map(|m| format!("{:<22.1}", m)).collect::<String>());
    }
}
