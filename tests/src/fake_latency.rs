//! A network's latency for the in-process fakes: every answer held back as long as the test says.

use axum::Router;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a fake holds every answer back, changeable while it runs.
#[derive(Debug, Clone, Default)]
pub struct Latency(Arc<AtomicU64>);

impl Latency {
    /// Sets the delay.
    pub fn set(&self, d: Duration) {
        self.0.store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// `router` with every answer delayed by this latency.
    pub fn wrap<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        let held = self.0.clone();
        router.layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                let wait = Duration::from_micros(held.load(Ordering::Relaxed));
                async move {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    next.run(req).await
                }
            },
        ))
    }
}
