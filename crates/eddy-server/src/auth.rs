//! Authentication. Today: the master key. With a master key set, every route but `/health`
//! needs `Authorization: Bearer <master key>`; without one, every route is open.
//!
//! API keys (HMAC of a key uid with the master key) and tenant tokens will be checked here
//! too, which is why the check is a function of the request, not of the route.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eddy_engine::Code;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Routes reachable without a key.
fn is_public(path: &str) -> bool {
    path == "/health"
}

/// Why a request is refused, if it is.
pub fn check(
    master_key: Option<&str>,
    path: &str,
    authorization: Option<&[u8]>,
) -> Result<(), ApiError> {
    let Some(master_key) = master_key else {
        return Ok(());
    };
    if is_public(path) {
        return Ok(());
    }
    let Some(value) = authorization else {
        return Err(ApiError::new(
            Code::MissingAuthorizationHeader,
            "The Authorization header is missing. It must use the bearer authorization method.",
        ));
    };
    let token = value
        .strip_prefix(b"Bearer ")
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default();
    // Constant-time comparison: the time taken must not tell how many leading bytes match.
    if bool::from(token.ct_eq(master_key.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::InvalidApiKey,
            "The provided API key is invalid.",
        ))
    }
}

/// Middleware applying [`check`] to every request.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match check(
        state.config.master_key.as_deref(),
        request.uri().path(),
        authorization,
    ) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_rules() {
        assert!(check(None, "/indexes", None).is_ok());
        assert!(check(Some("k"), "/health", None).is_ok());
        let missing = check(Some("secret"), "/indexes", None).unwrap_err();
        assert_eq!(missing.status().as_u16(), 401);
        assert_eq!(missing.body().code, "missing_authorization_header");
        let wrong = check(Some("secret"), "/indexes", Some(b"Bearer nope")).unwrap_err();
        assert_eq!(wrong.status().as_u16(), 403);
        assert_eq!(wrong.body().code, "invalid_api_key");
        let prefix = check(Some("secret"), "/indexes", Some(b"Bearer secre")).unwrap_err();
        assert_eq!(prefix.body().code, "invalid_api_key");
        assert!(check(Some("secret"), "/indexes", Some(b"secret")).is_err());
        assert!(check(Some("secret"), "/indexes", Some(b"Bearer secret")).is_ok());
    }
}
