//! A tokio echo server that keeps the `--peer` contract of `iopool bench echo`
//! (Benchmarks/check-echo-server.py checks it): `--host 127.0.0.1 --port PORT --threads N`, prints
//! `listening on 127.0.0.1:PORT` once it accepts, echoes every byte, closes after the client's
//! half-close once the echo is written, and exits 0 on SIGTERM or SIGINT.
//!
//! Thread per core, the shape issue 11 measured tokio in: N threads, each a current-thread runtime
//! with its own SO_REUSEPORT listener on the same port (the kernel spreads connections), so a
//! connection lives on one thread and no task ever crosses threads. The main thread only waits
//! for the signal. `--flavor multi` runs one multi-thread runtime with N workers and one listener
//! instead (tokio's default shape, with work stealing).

use socket2::{Domain, Socket, Type};
use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Builder;
use tokio::signal::unix::{signal, SignalKind};

fn usage(message: &str) -> ! {
    eprintln!("tokio-echo: {message}");
    eprintln!("usage: tokio-echo [--host 127.0.0.1] [--port PORT] [--threads N] [--flavor per-core|multi]");
    std::process::exit(2);
}

fn listener(address: SocketAddr, reuse_port: bool) -> std::io::Result<StdListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

async fn serve(listener: StdListener) {
    let listener = TcpListener::from_std(listener).expect("register listener");
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(connection) => connection,
            Err(error) => {
                // EMFILE and the like: a pause, not an exit (the listener stays good).
                eprintln!("tokio-echo: accept: {error}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            // Dropping the stream closes it: after EOF every byte read has been written.
        });
    }
}

fn main() {
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 0;
    let mut threads = 1usize;
    let mut flavor = "per-core".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--host" => host = value(),
            "--port" => port = value().parse().unwrap_or_else(|_| usage("--port: 0-65535")),
            "--threads" => threads = value().parse().ok().filter(|&n| n >= 1).unwrap_or_else(|| usage("--threads: a whole number ≥ 1")),
            "--flavor" => {
                flavor = value();
                if flavor != "per-core" && flavor != "multi" {
                    usage("--flavor: per-core or multi");
                }
            }
            _ => usage(&format!("unknown argument '{arg}'")),
        }
    }
    let address: SocketAddr = format!("{host}:{port}").parse().unwrap_or_else(|_| usage("--host: an IPv4 address"));

    // Signals first, so one that comes right after the announcement is not the default (death).
    let main_runtime = Builder::new_current_thread().enable_io().build().expect("runtime");
    let (mut terminate, mut interrupt) = main_runtime.block_on(async {
        (signal(SignalKind::terminate()).expect("SIGTERM"), signal(SignalKind::interrupt()).expect("SIGINT"))
    });

    let first = listener(address, flavor == "per-core").unwrap_or_else(|error| {
        eprintln!("tokio-echo: bind {address}: {error}");
        std::process::exit(1)
    });
    let bound = first.local_addr().expect("local address");
    if flavor == "multi" {
        let runtime = Builder::new_multi_thread().worker_threads(threads).enable_io().build().expect("runtime");
        runtime.spawn(async move { serve(first).await });
        std::mem::forget(runtime); // runs until the process exits
    } else {
        let mut listeners = vec![first];
        for _ in 1..threads {
            listeners.push(listener(bound, true).expect("second SO_REUSEPORT listener"));
        }
        for (index, listener) in listeners.into_iter().enumerate() {
            std::thread::Builder::new()
                .name(format!("tokio-echo-{index}"))
                .spawn(move || {
                    let runtime = Builder::new_current_thread().enable_io().build().expect("runtime");
                    runtime.block_on(serve(listener));
                })
                .expect("thread");
        }
    }
    println!("listening on {bound}");
    let _ = std::io::stdout().flush();

    main_runtime.block_on(async {
        let (sender, mut received) = tokio::sync::mpsc::channel::<()>(2);
        let other = sender.clone();
        tokio::spawn(async move {
            terminate.recv().await;
            let _ = sender.send(()).await;
        });
        tokio::spawn(async move {
            interrupt.recv().await;
            let _ = other.send(()).await;
        });
        received.recv().await;
    });
    std::process::exit(0);
}
