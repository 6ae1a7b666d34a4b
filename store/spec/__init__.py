"""The Service Spec: models, loading with line-precise errors, diffs, the JSON Schema."""

from store.spec.diff import ChangeKind, SpecChange, diff_specs
from store.spec.loader import LoadedSpec, digest_of, load_spec, normalised_dict
from store.spec.model import API_VERSION, ServiceSpec

__all__ = [
    "API_VERSION",
    "ChangeKind",
    "LoadedSpec",
    "ServiceSpec",
    "SpecChange",
    "diff_specs",
    "digest_of",
    "load_spec",
    "normalised_dict",
]
