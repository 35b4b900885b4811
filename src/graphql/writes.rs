//! The per-user mutation rate limit: a token bucket per account, charged
//! once per top-level mutation field, so every alias and every batch entry
//! counts. In memory, per instance (shared counters are the scale-out's job).
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo},
    PathSegment, Pos, ServerError, ServerResult, Value,
};
use uuid::Uuid;

use super::context::Viewer;
use crate::ratelimit::limited;

/// Buckets tracked before full ones are swept.
const SWEEP_AT: usize = 10_000;

/// Token buckets: `burst` mutations at once, refilled at `per_second`.
pub struct MutationLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl MutationLimiter {
    pub fn new(burst: u32, per_second: f64) -> Self {
        Self {
            burst: f64::from(burst),
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `user`, or says how long until one is back.
    pub fn take(&self, user: Uuid) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(&user) {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(user).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - *tokens;
            Err(Duration::from_secs_f64(
                missing / self.per_second.max(f64::MIN_POSITIVE),
            ))
        }
    }
}

/// Charges every top-level mutation field of an authenticated caller.
pub struct WriteLimit(pub Arc<MutationLimiter>);

impl ExtensionFactory for WriteLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(WriteLimit(self.0.clone()))
    }
}

#[async_trait::async_trait]
impl Extension for WriteLimit {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let top_level_mutation = info.parent_type == "Mutation" && info.path_node.parent.is_none();
        if top_level_mutation {
            if let Some(Viewer::User(user)) = ctx.data_opt::<Viewer>() {
                if let Err(wait) = self.0.take(*user) {
                    let error = limited("mutation", wait);
                    let mut refused = async_graphql::Error::new_with_source(error)
                        .into_server_error(Pos::default());
                    refused.locations.clear();
                    refused.path = vec![PathSegment::Field(
                        info.alias.unwrap_or(info.name).to_owned(),
                    )];
                    return Err(with_code(refused));
                }
            }
        }
        next.run(ctx, info).await
    }
}

fn with_code(mut error: ServerError) -> ServerError {
    crate::error::classify(&mut error);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_the_wait() {
        let limiter = MutationLimiter::new(3, 1.0);
        let user = Uuid::new_v4();
        for _ in 0..3 {
            assert!(limiter.take(user).is_ok());
        }
        let wait = limiter.take(user).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            limiter.take(Uuid::new_v4()).is_ok(),
            "others have their own"
        );
    }
}
