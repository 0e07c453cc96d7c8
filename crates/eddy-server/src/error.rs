//! The one response shape of every failure: Meilisearch's `{message, code, type, link}` with
//! the HTTP status of the engine's [`Code`] table.
//!
//! Server-only situations (bad content type, payload too large, unknown route…) use existing
//! [`Code`] variants, so the table in `eddy_engine::error` stays the single source of codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eddy_engine::{Code, Error, ResponseError};

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: Code,
    body: ResponseError,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error of `code` with a message.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            body: ResponseError::new(code, message),
            retry_after_secs: None,
        }
    }

    /// `bad_request` (400): a parameter or field Meilisearch does not know, or a body of the
    /// wrong shape.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::BadRequest, message)
    }

    /// `internal` (500).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Internal, message)
    }

    /// The Meilisearch code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The error object.
    pub fn body(&self) -> &ResponseError {
        &self.body
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let mut api = ApiError::new(e.code(), e.to_string());
        match &e {
            Error::Overloaded { retry_after } => {
                // Round up: `Retry-After: 0` would invite an immediate retry storm.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                api.retry_after_secs = Some(secs.max(1));
            }
            _ if api.code == Code::Internal => {
                tracing::error!(error = %e, "internal error");
            }
            _ => {}
        }
        api
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overload_answers_503_with_retry_after() {
        let e: ApiError = Error::Overloaded {
            retry_after: Duration::from_millis(1500),
        }
        .into();
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn engine_errors_keep_their_code_and_status() {
        let e: ApiError = Error::IndexNotFound("movies".into()).into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.body().code, "index_not_found");
        assert_eq!(e.body().error_type, "invalid_request");
    }
}
