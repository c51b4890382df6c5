//! The state every handler shares, and the caller's access to a workspace.

use crate::auth::{Authenticator, DevIssuer, Identity};
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::fanout::bus::Bus;
use crate::fanout::hub::{Hub, SubscriptionSlot};
use crate::limiter::RateLimits;
use crate::positions::PositionBuffer;
use crate::store::{Access, Store};
use axum::http::StatusCode;
use std::sync::Arc;
use sync_core::{Role, WorkspaceId};

/// Everything a request handler may use.
#[derive(Clone)]
pub struct AppState {
    /// The change log and records.
    pub store: Arc<dyn Store>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// Present only in dev-auth mode.
    pub dev_issuer: Option<Arc<DevIssuer>>,
    /// Wall time.
    pub clock: Arc<dyn Clock>,
    /// Limits.
    pub config: Arc<ServerConfig>,
    /// Device positions waiting to be written.
    pub positions: Arc<PositionBuffer>,
    /// Realtime fanout.
    pub hub: Arc<Hub>,
    /// Rate limiters.
    pub rate_limits: Arc<RateLimits>,
    /// Set when shutdown begins: new pushes get 503 while in-flight ones finish.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Workspaces known to exist (membership-from-claims mode creates them).
    known_workspaces: Arc<std::sync::Mutex<std::collections::HashSet<WorkspaceId>>>,
}

impl AppState {
    /// State for a gateway over `store`; `bus` carries commits between nodes
    /// ([`crate::fanout::bus::LocalBus`] for one node).
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        auth: Authenticator,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
    ) -> AppState {
        AppState {
            hub: Arc::new(Hub::new(store.clone(), bus, config.subscriber_queue)),
            rate_limits: Arc::new(RateLimits::new(config.rate_limits)),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            known_workspaces: Arc::default(),
            store,
            auth: Arc::new(auth),
            dev_issuer: None,
            clock,
            config: Arc::new(config),
            positions: Arc::new(PositionBuffer::default()),
        }
    }

    /// Turns on dev-auth mode (`POST /v1/dev/token`).
    pub fn with_dev_issuer(mut self, issuer: DevIssuer) -> AppState {
        self.dev_issuer = Some(Arc::new(issuer));
        self
    }

    /// How the store should check this caller's membership of `ws`. With
    /// membership from claims, the token's organization must be `ws`, and the
    /// workspace is created on first use.
    pub async fn access(&self, identity: &Identity, ws: &WorkspaceId) -> Result<Access, ApiError> {
        if !self.config.membership_from_claims {
            return Ok(Access::Member {
                user_id: identity.user_id.clone(),
            });
        }
        let role = match (&identity.org_id, &identity.org_role) {
            (Some(org), Some(role)) if org == ws.as_str() => Role::from_clerk_org_role(role),
            _ => {
                return Err(ApiError::forbidden(
                    "the token's organization is not this workspace",
                ))
            }
        };
        let known = self
            .known_workspaces
            .lock()
            .map(|k| k.contains(ws))
            .unwrap_or(false);
        if !known {
            self.store.ensure_workspace(ws, self.clock.now_ms()).await?;
            if let Ok(mut k) = self.known_workspaces.lock() {
                k.insert(ws.clone());
            }
        }
        Ok(Access::Claimed {
            user_id: identity.user_id.clone(),
            role,
        })
    }

    /// With membership from claims, workspaces and members live in the auth
    /// system: the routes that would manage them here answer 409.
    pub fn refuse_in_claims_mode(&self) -> Result<(), ApiError> {
        if self.config.membership_from_claims {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::MembershipFromClaims,
                "workspaces and members are managed in the auth system (organizations)",
            ));
        }
        Ok(())
    }

    /// The slot of a new subscription of `identity`, or 429
    /// `too_many_subscriptions` when they hold the most allowed.
    pub fn subscription_slot(&self, identity: &Identity) -> Result<SubscriptionSlot, ApiError> {
        let most = self.config.max_subscriptions_per_user;
        self.hub.take_slot(&identity.user_id, most).ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManySubscriptions,
                format!("at most {most} open subscriptions per user"),
            )
            .with_retry_after(5)
        })
    }
}
