//! The console's pages: the assets `scripts/console.sh build` makes in `console/dist`, embedded
//! in the binary at compile time. Hashed assets are cached for good; any other path under
//! `/console/` is the single page's own route and gets `index.html`. Every answer carries a
//! strict Content-Security-Policy (the console loads nothing but its own files).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

#[derive(rust_embed::Embed)]
#[folder = "../../console/dist/"]
#[allow_missing = true]
struct Assets;

/// Where the console is served.
pub const CONSOLE_PATH: &str = "/console/";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str) -> Response {
    let file = match Assets::get(path) {
        Some(file) => file,
        // The page's own routes (no file extension) are the page.
        None if !path.rsplit('/').next().unwrap_or("").contains('.') => match Assets::get("index.html") {
            Some(index) => return serve("index.html", index),
            None => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The console was not built into this binary: run scripts/console.sh build, \
                     then build tenure.",
                )
                    .into_response();
            }
        },
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    serve(path, file)
}

fn serve(path: &str, file: rust_embed::EmbeddedFile) -> Response {
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    let cache = if path.starts_with("assets/") {
        // Content-hashed names: a new build has new names.
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn index() -> Response {
    asset("index.html")
}

async fn file(Path(path): Path<String>) -> Response {
    asset(&path)
}

/// Adds the console's routes (and its security headers) to `router`.
pub fn routes<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let console = Router::new()
        .route(CONSOLE_PATH, get(index))
        .route("/console/{*path}", get(file))
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
                headers.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
                response
            },
        ));
    router
        .merge(console)
        .route("/", get(|| async { Redirect::to(CONSOLE_PATH) }))
        .route("/console", get(|| async { Redirect::to(CONSOLE_PATH) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(
            content_type("assets/main-AB12.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}
