"""Static checks of the production stack: docker-compose.yaml, .env.example, docker/Dockerfile.

No Docker engine is needed (none runs in CI). The compose file is validated against the
Compose Specification JSON schema, vendored here as ``compose-spec.json``:

    source:  compose-spec/compose-spec, schema/compose-spec.json (branch master), as vendored
             by the PyPI package check-jsonschema 0.39.0 (2026-10-26) in
             check_jsonschema/builtin_schemas/vendor/compose-spec.json
    sha256:  d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64
    license: Apache-2.0 (compose-spec.LICENSE beside it)

To refresh it: ``pip download --no-deps check-jsonschema -d /tmp/cj`` and copy that file out
of the wheel (update the lines above).

Besides the schema (on the file as written and after interpolation with .env.example), the
tests check what the issue asks of the stack: no secret written in the file, every variable
documented, the required services, the celery profile, the data volumes, healthchecks and
start-up order.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "docker" / "Dockerfile"
SCHEMA_FILE = HERE / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

AIRFLOW_SERVICES = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
]
CORE_SERVICES = ["airflow-db", "warehouse-db", "airflow-init", *AIRFLOW_SERVICES]
CELERY_SERVICES = ["redis", "airflow-worker"]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY", re.I)

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}, ${VAR:+alt}, ${VAR+alt}
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^${}]*))?\}")
BARE_REFERENCE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


# --------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f".env.example: not NAME=value: {line!r}"
        name, value = line.split("=", 1)
        assert name not in values, f".env.example: {name} twice"
        values[name] = value
    return values


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def strings(node, path=()):
    """Every string value of the YAML tree (keys excluded), with its path."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, (*path, str(i)))
    elif isinstance(node, str):
        yield path, node


def references(text: str) -> list[re.Match]:
    """The ${...} references of a value, ignoring $$ (a literal $ for the container)."""
    return list(REFERENCE.finditer(text.replace("$$", "")))


def interpolate(node, env: dict[str, str], dollar: str = "$"):
    """Compose's interpolation of the whole tree with ``env`` (what `docker compose config` does);
    ``$$`` becomes ``dollar`` (a literal ``$`` by default)."""
    if isinstance(node, dict):
        return {k: interpolate(v, env, dollar) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, dollar) for v in node]
    if not isinstance(node, str):
        return node

    def one(m: re.Match) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op and op.startswith(":"))
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        if op in (":?", "?"):
            if unset_or_empty:
                raise KeyError(f"required variable {name} is missing: {arg}")
            return value
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    parts = node.split("$$")
    return dollar.join(REFERENCE.sub(one, p) for p in parts)


def filled_env(env_example: dict[str, str]) -> dict[str, str]:
    """.env.example with every empty secret given a dummy value, as an operator's .env would."""
    return {k: (v or f"dummy-{k.lower()}") for k, v in env_example.items()}


def split_colons(entry: str) -> list[str]:
    """``a:b:c`` split on the colons outside ``${...}``."""
    fields, depth, current = [], 0, ""
    for i, ch in enumerate(entry):
        if ch == "{" and entry[i - 1:i] == "$":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        if ch == ":" and not depth:
            fields.append(current)
            current = ""
        else:
            current += ch
    return [*fields, current]


def volume_targets(service: dict) -> dict[str, str]:
    """{container path: source} of a service's short-syntax volumes."""
    out = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):  # long syntax
            out[entry["target"]] = entry.get("source", "")
        else:
            source, target = split_colons(entry)[:2]
            out[target] = source
    return out


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is a mapping here"
    return {k: str(v) for k, v in env.items()}


# --------------------------------------------------------------------------- schema


def test_vendored_schema_is_the_documented_one():
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_is_valid_against_the_compose_spec(compose, schema):
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_interpolated_compose_file_is_valid_too(compose, schema, env_example):
    """After `${...}` is replaced with the values of .env.example (dummy secrets), as compose does."""
    from jsonschema import Draft202012Validator

    resolved = interpolate(compose, filled_env(env_example))
    errors = list(Draft202012Validator(schema).iter_errors(resolved))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # Nothing left for compose to resolve ($$ stands for the container's own $).
    for path, value in strings(interpolate(compose, filled_env(env_example), dollar="\0")):
        assert "$" not in value, f"{'/'.join(path)}: reference left after interpolation: {value!r}"


def test_the_schema_catches_a_broken_file(compose, schema):
    """The validation is not vacuous: a typo in a service key is an error."""
    from jsonschema import Draft202012Validator

    broken = json.loads(json.dumps(compose))
    broken["services"]["airflow-scheduler"]["helthcheck"] = broken["services"]["airflow-scheduler"].pop("healthcheck")
    assert list(Draft202012Validator(schema).iter_errors(broken))


def test_compose_refuses_to_start_without_the_secrets(compose, env_example):
    env = {k: v for k, v in env_example.items() if v}  # secrets left empty, as in .env.example
    with pytest.raises(KeyError, match="required variable"):
        interpolate(compose, env)


# --------------------------------------------------------------------------- secrets and variables


def test_no_literal_secret_in_the_compose_file(compose):
    problems = []
    for path, value in strings(compose):
        key = path[-1]
        where = "/".join(path)
        # (a *_FILE or *_PATH setting names where a secret is, it is not one)
        if SECRET_NAME.search(key) and not key.endswith(("_FILE", "_PATH")):
            refs = references(value)
            if not (len(refs) == 1 and refs[0].group(0) == value.replace("$$", "")):
                problems.append(f"{where}: {value!r} is not one ${{VAR}} reference")
            elif refs[0]["op"] != ":?":
                problems.append(f"{where}: {value!r} must be ${{VAR:?...}} (required, no default)")
        # user:password@ in a URL: the password must be a required reference
        for m in re.finditer(r"://([^/@\s]*):([^@/\s]*)@", value):
            password = m.group(2)
            refs = references(password)
            if not (len(refs) == 1 and refs[0].group(0) == password and refs[0]["op"] == ":?"):
                problems.append(f"{where}: password in URL is not ${{VAR:?...}}: {password!r}")
    assert not problems, "\n".join(problems)


def test_secret_variables_have_no_default_anywhere(compose, env_example):
    secret_vars = set()
    for path, value in strings(compose):
        for ref in references(value):
            if SECRET_NAME.search(ref["name"]):
                secret_vars.add(ref["name"])
                assert ref["op"] == ":?", f"{'/'.join(path)}: {ref.group(0)} must have no default"
    assert {"AIRFLOW_DB_PASSWORD", "WAREHOUSE_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
            "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD", "REDIS_PASSWORD"} <= secret_vars
    for name in secret_vars:
        assert env_example.get(name) == "", f".env.example must leave {name} empty (no shared secret)"


def test_every_variable_is_documented_in_env_example(compose, env_example):
    used = set()
    for path, value in strings(compose):
        unescaped = value.replace("$$", "")
        used |= {m["name"] for m in references(unescaped)}
        leftover = REFERENCE.sub("", unescaped)
        bare = [m.group(0) for m in BARE_REFERENCE.finditer(leftover)]
        assert not bare, f"{'/'.join(path)}: use ${{VAR}} (or $$ for the container's shell): {bare}"
    missing = sorted(used - set(env_example))
    assert not missing, f"not in .env.example: {missing}"
    # ... and nothing stale there (COMPOSE_PROFILES is read by compose itself).
    unused = sorted(set(env_example) - used - {"COMPOSE_PROFILES"})
    assert not unused, f".env.example documents variables the compose file does not use: {unused}"


def test_env_example_defaults_match_the_compose_defaults(compose, env_example):
    for path, value in strings(compose):
        for ref in references(value):
            if ref["op"] == ":-":
                assert env_example[ref["name"]] == ref["arg"], (
                    f"{ref['name']}: .env.example says {env_example[ref['name']]!r}, "
                    f"{'/'.join(path)} defaults to {ref['arg']!r}"
                )


def test_env_example_documents_each_variable():
    """Every NAME= line has a comment (in the lines just above it or its block)."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            above = lines[max(0, i - 12):i]
            assert any(a.startswith("#") and len(a) > 2 for a in above), f"undocumented: {line}"


def test_dot_env_is_git_ignored():
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored


# --------------------------------------------------------------------------- services


def test_required_services_exist_without_profile(services):
    for name in CORE_SERVICES:
        assert name in services, f"missing service {name}"
        assert not services[name].get("profiles"), f"{name} must run without any profile"


def test_celery_profile_has_redis_and_a_scalable_worker(services, compose, env_example):
    for name in CELERY_SERVICES:
        assert "celery" in services[name].get("profiles", []), f"{name} must be in the celery profile"
    worker = services["airflow-worker"]
    assert worker["command"] in ("celery worker", ["celery", "worker"])
    assert "container_name" not in worker and "ports" not in worker, "scalable: no fixed name or host port"
    assert "redis" in worker["depends_on"] and worker["depends_on"]["redis"]["condition"] == "service_healthy"
    # The executor is chosen in .env: LocalExecutor by default, CeleryExecutor for the celery profile.
    executor = env_of(services["airflow-scheduler"])["AIRFLOW__CORE__EXECUTOR"]
    assert executor == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env_example["AIRFLOW_EXECUTOR"] == "LocalExecutor"
    broker = env_of(worker)["AIRFLOW__CELERY__BROKER_URL"]
    assert broker.startswith("redis://") and "@redis:6379" in broker


def test_all_airflow_services_share_one_configuration(services):
    """Same image, executor, metadata DB, fernet key, JWT secret and execution API URL everywhere."""
    names = ["airflow-init", *AIRFLOW_SERVICES, "airflow-worker"]
    keys = [
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "MOU_WAREHOUSE_URL",
    ]
    first = env_of(services[names[0]])
    for name in names:
        env = env_of(services[name])
        assert services[name]["image"] == services[names[0]]["image"]
        for key in keys:
            assert env.get(key) == first[key], f"{name}: {key} differs"
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    assert "@airflow-db:5432/" in first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert first["MOU_WAREHOUSE_URL"].startswith("postgresql://") and "@warehouse-db:5432/" in first["MOU_WAREHOUSE_URL"]


def test_two_separate_postgresql_servers(services):
    for name in ("airflow-db", "warehouse-db"):
        assert services[name]["image"].startswith("${POSTGRES_IMAGE:-postgres:")
        assert volume_targets(services[name]).get("/var/lib/postgresql/data")
    assert volume_targets(services["airflow-db"]) != volume_targets(services["warehouse-db"])


def test_init_service_migrates_sets_the_pool_and_creates_the_warehouse(services):
    init = services["airflow-init"]
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "airflow db migrate" in script
    assert re.search(r"airflow pools set mou_warehouse", script)
    assert "python -m mou_etl migrate" in script
    assert init["restart"] == "no"
    slots = env_of(init)["MOU_WAREHOUSE_POOL_SLOTS"]
    assert int(REFERENCE.fullmatch(slots)["arg"]) > 1, "more than one slot on PostgreSQL"
    assert init["depends_on"]["airflow-db"]["condition"] == "service_healthy"
    assert init["depends_on"]["warehouse-db"]["condition"] == "service_healthy"


def test_long_running_services_have_healthchecks(services):
    for name, service in services.items():
        if name == "airflow-init":
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_airflow_services_start_after_init_and_healthy_databases(services):
    for name in AIRFLOW_SERVICES + ["airflow-worker"]:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["airflow-db"]["condition"] == "service_healthy", name
        assert deps["warehouse-db"]["condition"] == "service_healthy", name
    # Task processes need the execution API: the scheduler (LocalExecutor) and the workers wait for it.
    for name in ("airflow-scheduler", "airflow-worker"):
        assert services[name]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_profiles_are_consistent(services):
    """What compose-go checks when loading the project: a service that runs without a profile
    may depend on a service of a profile only with ``required: false``."""
    for name, service in services.items():
        mine = set(service.get("profiles", []))
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on undefined {dep}"
            theirs = set(services[dep].get("profiles", []))
            if theirs and not (mine and mine <= theirs):
                assert cond.get("required") is False, f"{name} -> {dep} (profile {theirs}) needs required: false"


def test_landing_archive_and_docs_volumes(services, compose):
    declared = set(compose["volumes"])
    for name in ["airflow-init", *AIRFLOW_SERVICES, "airflow-worker"]:
        targets = volume_targets(services[name])
        env = env_of(services[name])
        assert targets.get("/data/landing") == "${MOU_LANDING_SOURCE:-mou-landing}", name
        assert targets.get("/data/archive") == "${MOU_ARCHIVE_SOURCE:-mou-archive}", name
        assert targets.get("/data/quality/docs") == "mou-data-docs", name
        assert targets.get("/opt/airflow/logs") == "airflow-logs", name
        assert env["MOU_LANDING_DIR"] == "/data/landing" and env["MOU_ARCHIVE_DIR"] == "/data/archive"
        assert env["MOU_DATA_DIR"] == "/data"
        landing = next(split_colons(v) for v in services[name]["volumes"] if ":/data/landing" in str(v))
        assert landing[2:] == ["ro"], "the pipeline only reads the landing zone"
    assert {"mou-landing", "mou-archive", "mou-data-docs", "airflow-logs"} <= declared
    docs = services["data-docs"]
    assert "docs" in docs["profiles"] and volume_targets(docs)["/usr/share/nginx/html"] == "mou-data-docs"
    assert docs["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    # every named volume used is declared
    for name, service in services.items():
        for source in volume_targets(service).values():
            resolved = interpolate(source, {})
            if not resolved.startswith((".", "/", "~")):
                assert resolved in declared, f"{name}: volume {resolved} not declared"


def test_published_ports_default_to_loopback(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            fields = split_colons(port)
            assert len(fields) == 3, f"{name}: {port}: host address:host port:container port"
            bind = REFERENCE.fullmatch(fields[0])
            assert bind and bind["op"] == ":-" and bind["arg"] == "127.0.0.1", (
                f"{name}: {port} must bind to a configurable address, 127.0.0.1 by default"
            )


def test_api_server_password_comes_from_env(services):
    api = services["airflow-apiserver"]
    env = env_of(api)
    assert env["AIRFLOW_ADMIN_PASSWORD"] == "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    script = "\n".join(api["command"])
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script and "exec airflow api-server" in script
    assert "AIRFLOW_ADMIN_PASSWORD" not in env_of(services["airflow-scheduler"]), "only the api-server needs it"


# --------------------------------------------------------------------------- image


def test_dockerfile_builds_the_project_image(services):
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11" in text
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}", text, re.M)
    assert re.search(r"pip install .*-r /opt/airflow/requirements.txt", text)
    for folder in ("dags", "plugins", "include"):
        assert re.search(rf"^COPY .*\b{folder}/ /opt/airflow/{folder}/", text, re.M), folder
        assert (REPO / folder).is_dir()
    build = services["airflow-scheduler"]["build"]
    assert (REPO / build["context"] / build["dockerfile"]) == DOCKERFILE
    assert build["args"]["AIRFLOW_IMAGE"] == "${AIRFLOW_BASE_IMAGE:-apache/airflow:3.3.2-python3.11}"
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == "3.3.2", "the lock pins the Airflow of the base image"
    ignore = [ln for ln in (REPO / "docker" / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
              if ln and not ln.startswith("#")]
    assert ignore[0] == "*", "the build context leaves out .venv, data/, .env"
    assert {"!requirements.txt", "!include", "!plugins", "!dags"} <= set(ignore)
