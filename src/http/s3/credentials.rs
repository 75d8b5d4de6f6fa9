//! S3 credentials: [`S3Credentials`] (never shown in `Debug` output or messages), and
//! where they are found: the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), else a profile of the shared credentials file.

use std::fmt;
use std::path::{Path, PathBuf};

/// Access key id, secret and optional session token. `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub(super) access_key_id: String,
    pub(super) secret_access_key: String,
    pub(super) session_token: Option<String>,
    /// Where they came from, for messages (the variables, "profile [p] of FILE").
    pub(super) origin: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("origin", &self.origin)
            .finish()
    }
}

impl S3Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> S3Credentials {
        S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
            origin: "the credentials given".into(),
        }
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Where the credentials were found: `AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    /// `profile [p] of FILE`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// Credentials from the environment, else from the shared credentials file; `Err`
/// says why there are none.
pub(super) fn find_credentials(
    var: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<S3Credentials, String> {
    let mut notes = Vec::new();
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(S3Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: var("AWS_SESSION_TOKEN"),
                origin: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            })
        }
        (Some(_), None) => {
            notes.push("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY".into())
        }
        (None, Some(_)) => {
            notes.push("AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID".into())
        }
        (None, None) => {
            notes.push("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into())
        }
    }
    let explicit = var("AWS_PROFILE");
    let profile = explicit.clone().unwrap_or_else(|| "default".into());
    let file = match var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(f) => Some(expand_home(&f, var("HOME").as_deref())),
        None => var("HOME").map(|h| Path::new(&h).join(".aws").join("credentials")),
    };
    match file {
        None => notes.push("HOME is not set, so there is no ~/.aws/credentials".into()),
        Some(file) => match std::fs::read_to_string(&file) {
            Ok(text) => match profile_credentials(&text, &profile) {
                Ok(Some((id, secret, token))) => {
                    return Ok(S3Credentials {
                        access_key_id: id,
                        secret_access_key: secret,
                        session_token: token,
                        origin: format!("profile [{profile}] of {}", file.display()),
                    })
                }
                Ok(None) => notes.push(format!("{} has no [{profile}] profile", file.display())),
                Err(why) => notes.push(format!("profile [{profile}] of {}: {why}", file.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                notes.push(format!("{} does not exist", file.display()))
            }
            Err(e) => notes.push(format!("cannot read {}: {e}", file.display())),
        },
    }
    if explicit.is_some() {
        notes.push(format!("AWS_PROFILE={profile}"));
    }
    Err(format!("no S3 credentials: {}", notes.join("; ")))
}

fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => Path::new(h).join(rest),
        _ => PathBuf::from(path),
    }
}

type ProfileKeys = (String, String, Option<String>);

/// The keys of `[profile]` in a shared credentials file: `Ok(None)` when there is no
/// such section, `Err` when it lacks a key. The format: `[name]` sections (`[profile
/// name]` accepted too), `key = value` lines, `#`/`;` comment lines; indented lines
/// (nested settings of the config file) are not credentials and are skipped.
fn profile_credentials(
    text: &str,
    profile: &str,
) -> std::result::Result<Option<ProfileKeys>, String> {
    let mut in_section = false;
    let mut found = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let name = name.strip_prefix("profile ").map_or(name, str::trim);
            in_section = name == profile;
            found |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    if !found {
        return Ok(None);
    }
    match (
        id.filter(|v| !v.is_empty()),
        secret.filter(|v| !v.is_empty()),
    ) {
        (Some(id), Some(secret)) => Ok(Some((id, secret, token.filter(|v| !v.is_empty())))),
        (None, _) => Err("no aws_access_key_id".into()),
        (_, None) => Err("no aws_secret_access_key".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::super::S3Config;
    use super::*;

    #[test]
    fn credentials_come_from_the_environment_first_then_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "# comment\n[default]\naws_access_key_id = FILEKEY\naws_secret_access_key=filesecret\n\
             \n[profile team]\n AWS_ACCESS_KEY_ID = TEAMKEY\naws_access_key_id=TEAMKEY\n\
             aws_secret_access_key = teamsecret\naws_session_token = teamtoken\n; more\n\
             [broken]\naws_access_key_id = X\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        // The credentials found with these variables set (and the key, secret, token).
        let found = |pairs: &[(&str, &str)]| {
            S3Config::from_lookup(&env(pairs))
                .unwrap()
                .credentials
                .unwrap()
        };
        let parts = |c: &S3Credentials| {
            (
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                c.session_token.clone(),
            )
        };
        let c = found(&[
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
            ("AWS_SHARED_CREDENTIALS_FILE", f),
        ]);
        assert_eq!(
            c,
            S3Credentials {
                access_key_id: "ENVKEY".into(),
                secret_access_key: "envsecret".into(),
                session_token: Some("envtoken".into()),
                origin: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            }
        );
        let c = found(&[("AWS_SHARED_CREDENTIALS_FILE", f)]);
        assert_eq!(parts(&c), ("FILEKEY".into(), "filesecret".into(), None));
        assert_eq!(c.origin(), format!("profile [default] of {f}"));
        let c = found(&[
            ("AWS_SHARED_CREDENTIALS_FILE", f),
            ("AWS_PROFILE", "team"),
            ("AWS_ACCESS_KEY_ID", "only-the-id"),
        ]);
        assert_eq!(
            parts(&c),
            (
                "TEAMKEY".into(),
                "teamsecret".into(),
                Some("teamtoken".into())
            )
        );
        // ~/.aws/credentials through HOME.
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::copy(&file, dir.path().join(".aws/credentials")).unwrap();
        let home = dir.path().to_str().unwrap();
        assert_eq!(found(&[("HOME", home)]).access_key_id(), "FILEKEY");
        let c = S3Config::from_lookup(&env(&[
            ("HOME", home),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        ]))
        .unwrap();
        assert_eq!(c.credentials.unwrap().access_key_id(), "FILEKEY");

        // No credentials: each reason is told.
        let why = |pairs: &[(&str, &str)]| {
            let c = S3Config::from_lookup(&env(pairs)).unwrap();
            assert!(c.credentials.is_none());
            c.why_unsigned().to_string()
        };
        let w = why(&[("AWS_SHARED_CREDENTIALS_FILE", f), ("AWS_PROFILE", "nope")]);
        assert!(
            w.contains(&format!("{f} has no [nope] profile")) && w.contains("AWS_PROFILE=nope"),
            "{w}"
        );
        let w = why(&[
            ("AWS_SHARED_CREDENTIALS_FILE", f),
            ("AWS_PROFILE", "broken"),
        ]);
        assert!(
            w.contains("profile [broken]") && w.contains("no aws_secret_access_key"),
            "{w}"
        );
        let w = why(&[("AWS_SECRET_ACCESS_KEY", "s"), ("HOME", "/nonexistent")]);
        assert!(
            w.contains("AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID"),
            "{w}"
        );
        assert!(
            w.contains("/nonexistent/.aws/credentials does not exist"),
            "{w}"
        );
        assert!(!w.contains("\"s\""), "{w}");
        let w = why(&[]);
        assert!(w.contains("HOME is not set"), "{w}");
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let cfg = S3Config::new(
            "us-east-1",
            None,
            Some(S3Credentials::new(
                "AKID",
                "very-secret",
                Some("tok-secret".into()),
            )),
        );
        let d = format!("{cfg:?}");
        assert!(d.contains("AKID") && d.contains("<redacted>"), "{d}");
        assert!(
            !d.contains("very-secret") && !d.contains("tok-secret"),
            "{d}"
        );
    }
}
