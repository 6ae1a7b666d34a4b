"""The Service Spec v1 (``apiVersion: enclii.dev/v1``, ``kind: Service``) as pydantic models.

Every model forbids unknown keys, so a typo (``replicsa``) is an error rather than a silently
ignored setting. Descriptions end up in spec/service.schema.json, which editors use to
complete and check enclii.yaml.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from store.models.enums import ServiceType
from store.names import (
    ENV_VAR,
    environment_problem,
    host_problem,
    label_problem,
    normalise_path,
    path_problem,
)
from store.quantity import QuantityError, byte_size, cpu_millicores

API_VERSION = "enclii.dev/v1"
DEFAULT_PORT = 8080


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _label(what: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, str) and (problem := label_problem(value, what)):
            raise _fail("label", problem)
        return value

    return BeforeValidator(check)


def _cpu(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        try:
            cpu_millicores(value)
        except QuantityError as exc:
            raise _fail("quantity", str(exc)) from None
    return value


def _size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        try:
            byte_size(value)
        except QuantityError as exc:
            raise _fail("quantity", str(exc)) from None
    return value


def _scalar_text(value: Any) -> Any:
    # YAML turns `value: 3000` and `value: true` into numbers and booleans; env values are
    # strings, and writing "true" the way YAML would is what people mean.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Name = Annotated[str, _label("name")]
# YAML reads `cpu: 1` and `value: 3000` as numbers; say so in the JSON Schema too.
_STRING_OR_NUMBER = WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]})
CpuQuantity = Annotated[str, BeforeValidator(_cpu), _STRING_OR_NUMBER]
SizeQuantity = Annotated[str, BeforeValidator(_size), _STRING_OR_NUMBER]
ScalarText = Annotated[
    str,
    BeforeValidator(_scalar_text),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}),
]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        # Only the documented camelCase keys: what the JSON Schema allows, the loader allows.
        populate_by_name=False,
        frozen=True,
    )


class Metadata(_Model):
    project: Annotated[str, _label("project")] = Field(
        description="Slug of the project the service belongs to."
    )
    environment: str = Field(description="dev, stage, prod or preview-<name>.")
    name: Name = Field(description="Service name, a DNS label; unique in its environment.")

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        if problem := environment_problem(value):
            raise _fail("environment", problem)
        return value


class Replicas(_Model):
    min: int = Field(1, ge=0, le=100, description="Replicas always running.")
    max: int | None = Field(
        None, ge=1, le=100, description="Upper bound for autoscaling; defaults to min."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max is not None and self.min > self.max:
            raise _fail("replicas_range", f"min {self.min} is greater than max {self.max}")
        return self

    @property
    def upper(self) -> int:
        return self.max if self.max is not None else max(self.min, 1)


class Build(_Model):
    context: str = Field(".", description="Folder to build, relative to enclii.yaml.")
    builder: Literal["auto", "python", "node", "procfile", "cmd"] = Field(
        "auto", description="How to build; auto detects Python, Node or a Procfile."
    )


class Runtime(_Model):
    image: str | None = Field(
        None,
        description="A prebuilt image; may use {{ git.sha }}. Omit it to build from source.",
    )
    build: Build | None = Field(None, description="Build from source (the default).")
    cmd: list[str] | None = Field(None, min_length=1, description="Command and arguments.")
    ports: list[Port] = Field(
        default_factory=list,
        description=f"Ports the service listens on; an api service defaults to [{DEFAULT_PORT}].",
    )
    cpu: CpuQuantity = Field("500m", description="CPU request: cores (1) or millicores (500m).")
    memory: SizeQuantity = Field("512Mi", description="Memory limit: 512Mi, 1Gi, …")
    replicas: Replicas = Field(default_factory=lambda: Replicas())

    @model_validator(mode="after")
    def _source(self) -> Self:
        if self.image is not None and self.build is not None:
            raise _fail("image_and_build", "set either image or build, not both")
        if len(set(self.ports)) != len(self.ports):
            raise _fail("duplicate_port", f"ports {self.ports} list a port twice")
        return self


class HttpGet(_Model):
    path: str = Field("/", description="Path to GET; a 2xx or 3xx answer passes.")
    port: Port | None = Field(None, description="Defaults to the first port.")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise _fail("path", f"path {value!r} must start with '/'")
        return value


class Tcp(_Model):
    port: Port | None = Field(None, description="Defaults to the first port.")


def _probe_schema(schema: dict[str, Any]) -> None:
    # The short forms `httpGet: /healthz` and `tcp: 5432` are accepted; tell editors so.
    properties = schema["properties"]
    properties["httpGet"]["anyOf"].insert(0, {"type": "string", "pattern": "^/"})
    properties["tcp"]["anyOf"][:0] = [
        {"type": "integer", "minimum": 1, "maximum": 65535},
        {"const": True},
    ]


class Probe(_Model):
    model_config = ConfigDict(json_schema_extra=_probe_schema)

    http_get: HttpGet | None = Field(
        None, description="GET a path: `httpGet: /healthz` or {path, port}."
    )
    tcp: Tcp | None = Field(None, description="Open a TCP connection: `tcp: {port: 5432}`.")
    timeout_seconds: float = Field(1, gt=0, le=60)
    period_seconds: float = Field(10, gt=0, le=300)
    initial_delay_seconds: float = Field(0, ge=0, le=3600)
    failure_threshold: int = Field(3, ge=1, le=100)
    success_threshold: int = Field(1, ge=1, le=100)

    @field_validator("http_get", mode="before")
    @classmethod
    def _short_http(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("tcp", mode="before")
    @classmethod
    def _short_tcp(cls, value: Any) -> Any:
        if value is True:
            return {}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"port": value}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.http_get is None) == (self.tcp is None):
            raise _fail("probe_kind", "a probe needs exactly one of httpGet or tcp")
        return self


class Health(_Model):
    readiness: Probe | None = Field(None, description="Gates traffic to a replica.")
    liveness: Probe | None = Field(None, description="Restarts a replica that fails it.")
    startup: Probe | None = Field(None, description="Holds the other probes until it passes.")


class RouteSpec(_Model):
    host: str = Field(description="Hostname, e.g. api.example.com.")
    path: str = Field("/", description="Path prefix.")
    tls: str | None = Field(None, description="Reference to a TLS certificate.")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.lower()
        if problem := host_problem(value):
            raise _fail("host", problem)
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if problem := path_problem(value):
            raise _fail("path", problem)
        return normalise_path(value)


class EnvVar(_Model):
    name: str = Field(description="Variable name.")
    value: ScalarText = Field(description="Its value.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_VAR.fullmatch(value):
            raise _fail("env_name", f"{value!r} is not a variable name (letters, digits, '_')")
        return value


class EnvFrom(_Model):
    secret_ref: str = Field(description="Name of a secret whose keys become variables.")


class VolumeSpec(_Model):
    name: Name
    mount_path: str = Field(description="Absolute path where the volume appears.")
    size: SizeQuantity = Field("1Gi", description="Capacity: 10Gi, 500Mi, …")
    storage_class: str = Field("standard", alias="class", description="Storage class.")

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise _fail("mount_path", f"mountPath {value!r} must be an absolute path")
        return value


class JobSpec(_Model):
    name: Name
    schedule: str | None = Field(
        None, description="Cron schedule (5 fields, UTC); omit for an on-demand job."
    )
    args: list[str] = Field(default_factory=list, description="Command and arguments.")
    retries: int = Field(0, ge=0, le=10, description="Retries after a failed run.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise _fail(
                "schedule",
                f"{value!r} is not a 5-field cron schedule (minute hour day month weekday), "
                'e.g. "0 2 * * *"',
            )
        return value


class Hpa(_Model):
    cpu_target_utilization: int | None = Field(
        None, ge=1, le=100, description="Percent of runtime.cpu each replica should use."
    )
    memory_target_utilization: int | None = Field(
        None, ge=1, le=100, description="Percent of runtime.memory each replica should use."
    )
    scale_down_stabilization_seconds: int = Field(
        300,
        ge=0,
        le=3600,
        description="Scale down only when the last change is at least this old.",
    )

    @model_validator(mode="after")
    def _some_target(self) -> Self:
        if self.cpu_target_utilization is None and self.memory_target_utilization is None:
            raise _fail(
                "hpa_target",
                "set cpuTargetUtilization or memoryTargetUtilization (percent)",
            )
        return self


class Autoscaling(_Model):
    hpa: Hpa | None = None


class PauseFor(_Model):
    seconds: int | None = Field(
        None,
        ge=1,
        le=86_400,
        description=(
            "Hold this long, then go on once the latest analysis check passed; "
            "omit to hold until promoteDeployment."
        ),
    )


class CanaryStep(_Model):
    """One step: exactly one of setWeight, pause or analysis."""

    set_weight: int | None = Field(
        None, ge=1, le=100, description="Send this percent of traffic to the canary."
    )
    pause: PauseFor | None = Field(
        None, description="{seconds: 300} holds for a duration; {} until promoted."
    )
    analysis: dict[str, Any] | None = Field(
        None,
        description="{} holds until an analysis check made during this step passes.",
        json_schema_extra={"maxProperties": 0},
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [k for k in ("set_weight", "pause", "analysis") if getattr(self, k) is not None]
        if len(given) != 1:
            raise _fail(
                "canary_step",
                "a canary step is exactly one of setWeight: N, pause: {seconds: N} (or {}), "
                "analysis: {}",
            )
        if self.analysis:
            raise _fail("canary_step", "analysis takes no settings here: write `analysis: {}`")
        return self

    @property
    def kind(self) -> str:
        return "setWeight" if self.set_weight is not None else "pause" if self.pause else "analysis"


def _default_steps() -> list[CanaryStep]:
    return [
        CanaryStep.model_validate(step)
        for step in ({"setWeight": 10}, {"pause": {"seconds": 300}}, {"setWeight": 100})
    ]


class Analysis(_Model):
    interval_seconds: float = Field(
        30, ge=0.5, le=3600, description="How often the canary is judged against stable."
    )
    window_seconds: float = Field(
        120,
        ge=1,
        le=86_400,
        description="Each check reads both releases' traffic over this sliding window.",
    )
    max_error_rate_percent: float = Field(
        2.0, ge=0, le=100, description="A canary answering a larger share of 5xx fails."
    )
    max_p95_ratio: float = Field(
        1.5, gt=0, le=100, description="A canary whose P95 exceeds stable's by this factor fails."
    )
    min_requests: int = Field(
        200,
        ge=1,
        le=10_000_000,
        description="Canary requests a window needs before a check says anything.",
    )
    min_errors: int = Field(
        5, ge=1, le=10_000_000, description="Canary 5xx a window needs before an error failure."
    )
    failures_to_abort: int = Field(
        4, ge=1, le=100, description="Consecutive failed checks that abort the canary."
    )
    deadline_seconds: int = Field(
        1800,
        ge=1,
        le=7 * 86_400,
        description=(
            "A canary that has waited this long for a passing analysis check rolls back "
            '("insufficient traffic" when its checks had too few requests); the pauses '
            "before the wait do not count."
        ),
    )

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_seconds < self.interval_seconds:
            raise _fail(
                "analysis_window",
                f"windowSeconds {self.window_seconds:g} is shorter than intervalSeconds "
                f"{self.interval_seconds:g}: checks would skip traffic",
            )
        return self


class Canary(_Model):
    steps: list[CanaryStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=30,
        description="Default: setWeight 10, pause 300 s, setWeight 100.",
    )
    analysis: Analysis = Field(default_factory=lambda: Analysis())
    keep_aborted_seconds: int = Field(
        600,
        ge=0,
        le=86_400,
        description="An aborted canary's replicas stay out of traffic this long for debugging.",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[CanaryStep]) -> list[CanaryStep]:
        if value and value[0].set_weight is None:
            raise _fail(
                "canary_steps",
                "the first canary step must be setWeight: a canary without traffic cannot be "
                "judged, so a pause or analysis before it would never end",
            )
        return value


class Deploy(_Model):
    strategy: Literal["rolling", "blue-green", "canary"] = Field(
        "rolling",
        description=(
            "rolling: traffic moves replica by replica as new ones become ready; "
            "blue-green: all at once when every new replica is ready; canary: by "
            "deploy.canary.steps, judged against the stable release by automated analysis."
        ),
    )
    progress_deadline_seconds: int = Field(
        300,
        ge=10,
        le=3600,
        description="A deployment not healthy by then fails, and traffic stays where it was.",
    )
    rollback_window_seconds: int = Field(
        600,
        ge=0,
        le=86_400,
        description=(
            "How long the previous release keeps running out of traffic after a deploy, "
            "so a rollback to it is instant."
        ),
    )
    canary: Canary | None = Field(
        None,
        description=(
            "Steps and analysis of a canary deploy (strategy canary, or `enclii deploy "
            "--strategy canary`); defaults filled in when the strategy is canary."
        ),
    )

    @model_validator(mode="after")
    def _canary_defaults(self) -> Self:
        if self.strategy == "canary" and self.canary is None:
            object.__setattr__(self, "canary", Canary())
        return self


class LatencyObjective(_Model):
    threshold_ms: float = Field(gt=0, le=600_000, description="A request slower than this is bad.")
    percent: float = Field(
        gt=0, lt=100, description="Share of requests that must be faster, e.g. 99."
    )


class Slo(_Model):
    availability: float | None = Field(
        None,
        gt=0,
        lt=100,
        description="Percent of requests that must not answer 5xx, e.g. 99.9.",
    )
    latency: LatencyObjective | None = Field(None, description="{thresholdMs: 300, percent: 99}")
    window_days: int = Field(30, ge=1, le=90, description="Period the error budget covers.")
    burn_rate_alert: float = Field(
        14.4,
        gt=0,
        le=10_000,
        description=(
            "Alert (slo-burn) when the budget burns this many times faster than it lasts "
            "the whole window; 14.4 spends 2% of 30 days' budget in an hour."
        ),
    )
    burn_window_seconds: int = Field(
        3600, ge=10, le=86_400, description="Window the burn rate is measured over."
    )

    @model_validator(mode="after")
    def _some_objective(self) -> Self:
        if self.availability is None and self.latency is None:
            raise _fail(
                "slo", "an slo needs availability (percent) or latency {thresholdMs, percent}"
            )
        return self


AlertEvent = Literal["rollback", "freeze", "unfreeze", "slo-burn"]


def _default_alert_events() -> list[AlertEvent]:
    return ["rollback", "freeze", "slo-burn"]


class AlertPolicy(_Model):
    name: Name
    webhook: str = Field(
        description="URL that receives a Slack-compatible JSON message (POST).",
        json_schema_extra={"pattern": "^https?://[^/]+"},
    )

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _fail(
                "webhook",
                "webhook must be an http(s) URL with a host, e.g. "
                "https://hooks.slack.com/services/…",
            )
        return value

    events: list[AlertEvent] = Field(
        default_factory=_default_alert_events,
        min_length=1,
        description="rollback, freeze, unfreeze and slo-burn; default all but unfreeze.",
    )


def _unique(items: list[Any], key: str, what: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = getattr(item, key)
        if value in seen:
            raise _fail("duplicate", f"{what} {value!r} appears twice")
        seen.add(value)


class ServiceBody(_Model):
    type: ServiceType = Field(ServiceType.API, description="api (serves traffic), worker or job.")
    runtime: Runtime = Field(default_factory=lambda: Runtime())
    health: Health = Field(default_factory=lambda: Health())
    routes: list[RouteSpec] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    env_from: list[EnvFrom] = Field(default_factory=list)
    volumes: list[VolumeSpec] = Field(default_factory=list)
    jobs: list[JobSpec] = Field(default_factory=list)
    autoscaling: Autoscaling = Field(default_factory=lambda: Autoscaling())
    deploy: Deploy = Field(default_factory=lambda: Deploy())
    slo: Slo | None = Field(None, description="Objectives whose error budget gates deploys.")
    alerts: list[AlertPolicy] = Field(
        default_factory=list, description="Webhooks told of rollbacks, freezes and SLO burn."
    )

    @field_validator("alerts")
    @classmethod
    def _alerts(cls, value: list[AlertPolicy]) -> list[AlertPolicy]:
        _unique(value, "name", "alert")
        return value

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: list[RouteSpec]) -> list[RouteSpec]:
        seen: set[tuple[str, str]] = set()
        for route in value:
            if (route.host, route.path) in seen:
                raise _fail("duplicate", f"route {route.host}{route.path} appears twice")
            seen.add((route.host, route.path))
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: list[EnvVar]) -> list[EnvVar]:
        _unique(value, "name", "variable")
        return value

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[VolumeSpec]) -> list[VolumeSpec]:
        _unique(value, "name", "volume")
        _unique(value, "mount_path", "mountPath")
        return value

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, value: list[JobSpec]) -> list[JobSpec]:
        _unique(value, "name", "job")
        return value


class ServiceSpec(_Model):
    """An Enclii service: what to run, how to check it, where to route it."""

    model_config = ConfigDict(
        title="Enclii Service Spec",
        json_schema_extra={"$id": "https://enclii.dev/schemas/service.v1.json"},
    )

    api_version: Literal["enclii.dev/v1"] = Field(description="Always enclii.dev/v1.")
    kind: Literal["Service"] = Field(description="Always Service.")
    metadata: Metadata
    spec: ServiceBody = Field(default_factory=lambda: ServiceBody())
