"""JUnit XML for `edgec test`, in the structure CI tools read (Jenkins' junit.xsd; GitLab,
GitHub test reporters): one <testsuites> with one <testsuite>, one <testcase> per check.

    <testsuites name tests failures errors skipped time>
      <testsuite name tests failures errors skipped time timestamp hostname>
        <properties><property name value/>...</properties>   (target, samples, figures)
        <testcase name classname time>
          <failure message type>details</failure> | <skipped message/>
        </testcase> ...
        <system-out>the terminal summary</system-out>
      </testsuite>
    </testsuites>

tests/data/junit.xsd is that schema; tests validate every file written here against it.
"""
from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

# Characters XML 1.0 cannot carry (control characters but tab, newline, carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value) -> str:
    return _NOT_XML.sub("?", str(value))


def _secs(value: float) -> str:
    return f"{max(float(value), 0.0):.3f}"


def junit_tree(result) -> ET.ElementTree:
    """The XML tree for a citest.TestResult."""
    from .citest import FAIL, SKIP, fmt, format_table
    checks = result.checks
    failures = sum(c.status == FAIL for c in checks)
    skipped = sum(c.status == SKIP for c in checks)
    suite_name = f"edgec test {result.model} on {result.target}"
    counts = {"tests": str(len(checks)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped), "time": _secs(result.elapsed_s)}
    root = ET.Element("testsuites", {"name": _text(suite_name), **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": _text(suite_name), **counts,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        "hostname": _text(socket.gethostname() or "localhost")})
    props = ET.SubElement(suite, "properties")
    facts = {"out_dir": str(result.out_dir), "target": result.target,
             "emulator": result.emulator, "samples": str(result.samples),
             "reference": result.reference,
             **{f"figure.{k}": fmt(k, v) for k, v in result.figures.items()}}
    for name, value in facts.items():
        ET.SubElement(props, "property", {"name": _text(name), "value": _text(value)})
    classname = _text(f"edgec.{result.target}.{result.model}".replace(" ", "_"))
    for c in checks:
        case = ET.SubElement(suite, "testcase", {"name": _text(c.name),
                                                 "classname": f"{classname}.{c.group}",
                                                 "time": _secs(c.time_s)})
        if c.status == FAIL:
            fail = ET.SubElement(case, "failure", {"message": _text(c.message),
                                                   "type": c.group})
            fail.text = _text(c.message + ("\n" + c.detail if c.detail else ""))
        elif c.status == SKIP:
            ET.SubElement(case, "skipped", {"message": _text(c.message)})
    out = ET.SubElement(suite, "system-out")
    out.text = _text(format_table(result))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(result, path: str | Path) -> Path:
    path = Path(path)
    junit_tree(result).write(path, encoding="UTF-8", xml_declaration=True)
    return path
