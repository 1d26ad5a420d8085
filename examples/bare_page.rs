//! The baseline of `scripts/loadtest`: a bare Axum handler serving a file's
//! bytes as HTML, with no cache logic, as a cached page costs at best.
//!
//! Run with `cargo run --release --example bare_page -- --body page.html [--listen ADDR]`.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:8002".to_owned();
    let mut body_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = value,
            ("--body", Some(value)) => body_file = Some(value),
            _ => return Err("usage: bare_page --body FILE [--listen ADDR]".into()),
        }
    }
    let body_file = body_file.ok_or("usage: bare_page --body FILE [--listen ADDR]")?;
    let body = Bytes::from(std::fs::read(&body_file).map_err(|e| format!("{body_file}: {e}"))?);
    let app = Router::new().fallback(get(move || {
        let body = body.clone();
        async move { ([(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response() }
    }));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("bare_page serving {body_file} on http://{listen}");
    axum::serve(listener, app).await?;
    Ok(())
}
