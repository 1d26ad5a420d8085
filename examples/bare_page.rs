//! The baseline of `scripts/loadtest`: a bare Axum handler serving a file's
//! bytes as HTML, with no cache logic, as a cached page costs at best; with
//! `--header`, also the header fields a cache's hit serves (`Expires`,
//! `Cache-Control`, `ETag`, `Age`, `Cache-Status`), fixed values of their
//! length, copied from a map made once (as a cache keeps a page's), so that
//! what writing them costs the server can be told apart from what the
//! cache costs.
//!
//! Run with `cargo run --release --example bare_page -- --body page.html [--listen ADDR] [--header 'name: value']...`.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:8002".to_owned();
    let mut body_file = None;
    let mut headers = Vec::new();
    const USAGE: &str = "usage: bare_page --body FILE [--listen ADDR] [--header 'name: value']...";
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = value,
            ("--body", Some(value)) => body_file = Some(value),
            ("--header", Some(line)) => {
                let (name, value) = line.split_once(':').ok_or(USAGE)?;
                headers.push((
                    HeaderName::from_bytes(name.trim().as_bytes())?,
                    HeaderValue::from_str(value.trim())?,
                ));
            }
            _ => return Err(USAGE.into()),
        }
    }
    let body_file = body_file.ok_or(USAGE)?;
    let body = Bytes::from(std::fs::read(&body_file).map_err(|e| format!("{body_file}: {e}"))?);
    let app = if headers.is_empty() {
        Router::new().fallback(get(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response() }
        }))
    } else {
        let mut fields = HeaderMap::new();
        fields.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        fields.extend(headers);
        // Shared: axum clones the handler, and what it holds, per request.
        let fields = std::sync::Arc::new(fields);
        Router::new().fallback(get(move || {
            let (body, fields) = (body.clone(), fields.clone());
            async move {
                let mut response = body.into_response();
                *response.headers_mut() = HeaderMap::clone(&fields);
                response
            }
        }))
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("bare_page serving {body_file} on http://{listen}");
    axum::serve(listener, app).await?;
    Ok(())
}
