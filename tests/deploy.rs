//! The deployment files in deploy/: the manifests parse, agree with each other and with the
//! container file, and the server starts with the arguments they give it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use yaml_rust2::{Yaml, YamlLoader};

mod redis;

const MANIFESTS: &str = include_str!("../deploy/kubernetes.yaml");
const CONTAINERFILE: &str = include_str!("../deploy/Containerfile");

fn documents() -> Vec<Yaml> {
    YamlLoader::load_from_str(MANIFESTS).expect("kubernetes.yaml is YAML")
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    named(docs, kind, "pyeval")
}

fn named<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|doc| {
            doc["kind"].as_str() == Some(kind) && doc["metadata"]["name"].as_str() == Some(name)
        })
        .unwrap_or_else(|| panic!("no {kind} {name} in kubernetes.yaml"))
}

/// The Deployment's container arguments.
fn args(docs: &[Yaml]) -> Vec<String> {
    let container = &of_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_manifests_agree_with_each_other_and_the_container_file() {
    let docs = documents();
    let kinds: Vec<_> = docs
        .iter()
        .map(|doc| doc["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "Deployment",
            "Service"
        ]
    );
    for (doc, api) in docs
        .iter()
        .zip(["apps/v1", "v1", "autoscaling/v2", "apps/v1", "v1"])
    {
        assert_eq!(doc["apiVersion"].as_str(), Some(api));
    }
    let deployment = of_kind(&docs, "Deployment");
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        pod["metadata"]["labels"]
    );
    let container = &pod["spec"]["containers"][0];
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"].as_i64(), Some(8000));
    let args = args(&docs);
    assert!(
        args.contains(&"--listen=0.0.0.0:8000".to_owned()),
        "{args:?}"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["path"].as_str(),
            Some("/healthz")
        );
        assert_eq!(container[probe]["httpGet"]["port"], port["name"]);
    }
    // Graceful shutdown outlasts the longest evaluation.
    let timeout: i64 = args
        .iter()
        .find_map(|arg| arg.strip_prefix("--timeout="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap()
            > timeout
    );
    // The token file is where the secret is mounted.
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(args.contains(&format!("--token-file={mount}/token")));

    let service = of_kind(&docs, "Service");
    assert_eq!(service["spec"]["selector"], pod["metadata"]["labels"]);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);
    // Any replica serves any session: no affinity, and the sessions in the store, which
    // its Service names.
    assert!(service["spec"]["sessionAffinity"].is_badvalue());
    let redis = named(&docs, "Service", "pyeval-redis");
    let redis_pod = &named(&docs, "Deployment", "pyeval-redis")["spec"]["template"];
    assert_eq!(redis["spec"]["selector"], redis_pod["metadata"]["labels"]);
    let redis_port = &redis_pod["spec"]["containers"][0]["ports"][0];
    assert_eq!(redis["spec"]["ports"][0]["targetPort"], redis_port["name"]);
    let url = format!(
        "--session-store=redis://pyeval-redis:{}",
        redis_port["containerPort"].as_i64().unwrap()
    );
    assert!(args.contains(&url), "{args:?}");
    let hpa = of_kind(&docs, "HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );

    assert!(CONTAINERFILE.lines().any(|line| line == "EXPOSE 8000"));
    assert!(CONTAINERFILE.contains(r#""--listen", "0.0.0.0:8000""#));
    assert!(CONTAINERFILE.contains(&format!(r#""--token-file", "{mount}/token""#)));
}

#[test]
fn the_server_starts_with_the_deployments_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken").unwrap();
    // Where the cluster would listen, find its secret and its session store, this
    // machine's loopback, a temporary file and a Redis on loopback.
    let redis = redis::Redis::start();
    let args: Vec<String> = args(&documents())
        .into_iter()
        .map(|arg| match arg.split_once('=') {
            Some(("--listen", _)) => "--listen=127.0.0.1:0".to_owned(),
            Some(("--token-file", _)) => format!("--token-file={}", token.display()),
            Some(("--session-store", _)) => format!("--session-store={}", redis.url),
            _ => arg,
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pyeval"))
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("pyeval: serving on http://")
        .map(str::to_owned);
    let health = addr.as_deref().map(|addr| {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(addr.is_some(), "not serving: {line}");
    assert!(health.unwrap().starts_with("HTTP/1.1 200"));
    assert!(status.success());
}
