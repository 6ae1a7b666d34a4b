"""The software bill of materials of a release: CycloneDX JSON of its resolved packages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot5
from packageurl import PackageURL

from reconcile.local.builder import BUILDER_VERSION, Package


def sbom_document(service: str, release_id: str, packages: Iterable[Package]) -> str:
    bom = Bom()
    root = Component(
        name=service, version=release_id, type=ComponentType.APPLICATION, bom_ref=release_id
    )
    bom.metadata.component = root
    bom.metadata.tools.components.add(
        Component(
            name=BUILDER_VERSION.split("/")[0],
            version=BUILDER_VERSION.split("/")[1],
            type=ComponentType.APPLICATION,
        )
    )
    components = []
    for package in packages:
        purl = PackageURL(type=package.ecosystem, name=package.name, version=package.version)
        component = Component(
            name=package.name,
            version=package.version,
            type=ComponentType.LIBRARY,
            purl=purl,
            bom_ref=purl.to_string(),
        )
        bom.components.add(component)
        components.append(component)
    # The build resolves a flat set: every package is a dependency of the release.
    bom.register_dependency(root, components)
    return JsonV1Dot5(bom).output_as_string(indent=2)


def write_sbom(path: Path, service: str, release_id: str, packages: Iterable[Package]) -> str:
    """Write the SBOM to ``path``; return its sha256 (signed with the release)."""
    document = sbom_document(service, release_id, packages).encode()
    path.write_bytes(document)
    return "sha256:" + hashlib.sha256(document).hexdigest()
