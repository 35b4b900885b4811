//! Connection bounds: slow headers, idle keep-alive connections and too many
//! connections from one address are closed, while the server keeps
//! answering everyone else.
use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::helpers::{spawn_app_with, TestApp};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: studysync\r\n\r\n";

/// Reads until the server closes the connection; true once it has.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}

/// Sends one request and reads its response head; false if the connection
/// was closed instead.
async fn answers(stream: &mut TcpStream) -> bool {
    if stream.write_all(HEALTHZ).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf).await {
        Ok(n) if n > 0 => buf[..n].starts_with(b"HTTP/1.1 200"),
        _ => false,
    }
}

/// A TCP connection to the app from the given local address.
async fn connect_from(app: &TestApp, local: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{local}:0").parse::<SocketAddr>().expect("addr"))
        .expect("bind");
    socket.connect(app.addr).await.expect("connect")
}

async fn still_answers(app: &TestApp) {
    let reply = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected_after_the_header_timeout() {
    let app = spawn_app_with(&["--http-header-read-timeout-ms", "300"]).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        writer.write_all(b"GET /healthz HTTP/1.1\r\n").await.ok();
        // Up to 200 header bytes, one every 50 ms: far longer than the
        // timeout if the server let it run.
        for byte in b"X-Slow: ".iter().chain([b'a'; 192].iter()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                return false;
            }
        }
        true
    };
    let closed = async {
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    let finished_trickle = tokio::select! {
        whole = trickle => whole,
        () = closed => false,
    };
    assert!(
        !finished_trickle,
        "the server waited for every trickled byte"
    );
    still_answers(&app).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let app = spawn_app_with(&["--http-keep-alive-timeout-ms", "200"]).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    assert!(answers(&mut stream).await, "the first request is answered");
    assert!(closed_by_server(&mut stream).await);
    still_answers(&app).await;
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_closed_while_other_addresses_are_served() {
    let app = spawn_app_with(&[
        "--max-connections-per-address",
        "4",
        "--http-keep-alive-timeout-ms",
        "600000",
        "--http-header-read-timeout-ms",
        "600000",
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from(&app, "127.0.0.1").await;
        assert!(answers(&mut stream).await, "within the cap");
        held.push(stream);
    }
    for _ in 0..3 {
        let mut extra = connect_from(&app, "127.0.0.1").await;
        assert!(!answers(&mut extra).await, "a fifth connection is refused");
    }
    // Another address is served, and so are the held connections.
    let mut other = connect_from(&app, "127.0.0.2").await;
    assert!(answers(&mut other).await, "another address is served");
    for stream in &mut held {
        assert!(answers(stream).await, "held connections still work");
    }
    // Closing one frees its place.
    drop(held.pop());
    let mut freed = false;
    for _ in 0..200 {
        let mut again = connect_from(&app, "127.0.0.1").await;
        if answers(&mut again).await {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        freed,
        "a closed connection's place is given to the next one"
    );
}

#[tokio::test]
async fn connections_beyond_the_overall_cap_are_closed_and_the_server_recovers() {
    let app = spawn_app_with(&[
        "--max-connections",
        "3",
        "--http-keep-alive-timeout-ms",
        "600000",
    ])
    .await;
    let mut held = Vec::new();
    for local in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        let mut stream = connect_from(&app, local).await;
        assert!(answers(&mut stream).await, "within the cap");
        held.push(stream);
    }
    let mut extra = connect_from(&app, "127.0.0.4").await;
    assert!(!answers(&mut extra).await, "a fourth connection is refused");
    held.clear();
    let mut recovered = false;
    for _ in 0..200 {
        let mut again = connect_from(&app, "127.0.0.4").await;
        if answers(&mut again).await {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(recovered);
}
