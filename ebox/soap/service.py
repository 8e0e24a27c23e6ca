"""A SOAP service of eBox: its contract files, its namespace and its operations.

Every service (EboxMessage v1, RegisteredMail v1) is served the same way by ebox.soap.views:
same hardening, WS-Security, validation, Faults and audit. A service is data: the WSDL and the
XSDs it is written against (in ebox/soap/contract/, the first XSD being the service's own, the
others those it imports) and the operation for each request element.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lxml import etree

from ebox.senders.models import Sender

CONTRACT_DIR = Path(__file__).resolve().parent / "contract"

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_XS_NS = "http://www.w3.org/2001/XMLSchema"


@dataclass(frozen=True)
class Caller:
    """Who signed the request: the sender, and the certificate it signed with."""

    sender: Sender
    certificate_sha256: str


@dataclass(frozen=True)
class Operation:
    name: str
    # The validated request element and its caller (None for an unsigned anonymous call).
    run: Callable[[etree._Element, Caller | None], etree._Element]
    # (repeated child, most accepted): counted before validation, to answer TOO_MANY_IDS.
    limit: tuple[str, int] | None = None
    # May be called without a signature (it reveals nothing).
    allows_anonymous: bool = False
    # A refusal is audited as a refused publication, with the sender's MessageID.
    publishes: bool = False
    # Where the request carries its bulk (the path of an xs:base64Binary element without
    # facets, from the request element): validated apart when it is plain base64.
    bulk: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str  # as in the URL: /soap/<name>/<version>
    version: str
    namespace: str
    wsdl_file: str
    xsd_files: tuple[str, ...]  # the service's own schema first, then the ones it imports
    operations: Mapping[str, Operation]  # by the request element's Clark name
    _schemas: threading.local = field(default_factory=threading.local, compare=False)

    @property
    def path(self) -> str:
        return f"/{self.name}/{self.version}"

    def qualified(self, name: str) -> str:
        """The Clark name of an element of the service's namespace."""
        return f"{{{self.namespace}}}{name}"

    def schema(self) -> etree.XMLSchema:
        """The service's XSD, one instance per thread (a validator keeps its error log)."""
        loaded: etree.XMLSchema | None = getattr(self._schemas, "schema", None)
        if loaded is None:
            # The imports name files beside it: local reads only, never the network.
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            loaded = etree.XMLSchema(etree.parse(str(CONTRACT_DIR / self.xsd_files[0]), parser))
            self._schemas.schema = loaded
        return loaded

    def served_wsdl(self, endpoint_url: str) -> bytes:
        """The WSDL as served: its address and its schemas' locations are the public ones."""
        root = _copy(_contract_tree(self.wsdl_file).getroot())
        address = root.find(f".//{{{_WSDL_NS}}}port/{{{_WSDL_SOAP_NS}}}address")
        assert address is not None  # every contract file has one
        address.set("location", endpoint_url)
        _point_imports_at(root, endpoint_url)
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")

    def served_xsd(self, file_name: str, endpoint_url: str) -> bytes | None:
        """A schema of the contract by its file name, or None for any other name."""
        if file_name not in self.xsd_files:
            return None
        root = _copy(_contract_tree(file_name).getroot())
        _point_imports_at(root, endpoint_url)
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _point_imports_at(root: etree._Element, endpoint_url: str) -> None:
    for schema_import in root.iterfind(f".//{{{_XS_NS}}}import"):
        location = schema_import.get("schemaLocation")
        if location:
            schema_import.set("schemaLocation", f"{endpoint_url}?xsd={location}")


@cache
def _contract_tree(file_name: str) -> etree._ElementTree:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.parse(str(CONTRACT_DIR / file_name), parser)


def _copy(root: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(root))
