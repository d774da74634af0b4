//! What the end-to-end tests share: a logged-in API client, the SIP fixture ([`sip`]) and a
//! headless browser ([`browser`]).

pub mod browser;
pub mod sip;

use reqwest::StatusCode;
use serde_json::Value;

/// A staff member logged in over HTTP, holding a bearer token.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    /// Logs `user` in at `base` (`http://127.0.0.1:PORT`).
    pub async fn login(base: &str, user: &str, password: &str) -> Api {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "login {user}");
        let body: Value = res.json().await.unwrap();
        Api {
            http,
            base: base.to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// GET with extra headers; the raw response.
    pub async fn fetch(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.unwrap()
    }

    /// POST JSON; the status and the body, which for a client error must be a problem document.
    #[allow(dead_code)] // not every test binary posts
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        if status.is_client_error() {
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GET as JSON; a client or server error must be a problem document.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self.fetch(path, &[]).await;
        let status = res.status();
        if !status.is_success() {
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }
        (status, res.json().await.unwrap_or(Value::Null))
    }
}
