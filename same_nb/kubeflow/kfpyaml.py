"""pipeline.py → pipeline.yaml: check the generated source, import it, compile it with kfp.

``check_generated`` refuses a generated pipeline.py that is not Python or calls anything the
template does not (the last guard against a user value that reached it unescaped).
``write_pipeline_yaml`` compiles with kfp and rewrites kfp's header comment so no parameter default
or name can break the YAML, then reads the file back.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

from same_nb.bundle.escape import visible
from same_nb.errors import SameError


def check_generated(source: str, allowed: set[str]) -> None:
    """Refuse a generated pipeline.py that is not Python or calls anything the template does not:
    the last guard, before it is imported, against a user value that reached it unescaped."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise SameError(f"same-nb generated an invalid pipeline.py ({exc}); please report this") from None
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called not in allowed and called not in functions:
                raise SameError(f"same-nb generated a pipeline.py that calls {called or 'an expression'} "
                                f"(line {node.lineno}): a value reached the code unescaped; refusing to import it. "
                                f"Please report this with the notebook's file and step names")


def write_pipeline_yaml(pipeline_func, pipeline_yaml: str | Path) -> None:
    """Compile ``pipeline_func`` with kfp into ``pipeline_yaml``, then read the file back.

    kfp writes a header comment with each parameter's default pasted in as is: a multi-line string
    default (``'SELECT *\\nFROM t'``) or an unprintable character makes the file invalid YAML, or adds
    keys. The header is rewritten from the same spec with every value escaped onto its line; the
    file must then load (yaml.safe_load) as exactly the spec kfp compiled, or compiling fails."""
    import yaml
    from google.protobuf import json_format
    from kfp import compiler
    from kfp.compiler import pipeline_spec_builder

    pipeline_yaml = Path(pipeline_yaml)
    tmp = pipeline_yaml.with_name(f".{pipeline_yaml.stem}.{os.getpid()}.tmp.yaml")
    try:
        compiler.Compiler().compile(pipeline_func, str(tmp))
        with open(tmp, encoding="utf-8", newline="") as file:     # as written: a '\r' in a default stays
            text = file.read()
        spec = json_format.MessageToDict(pipeline_func.pipeline_spec)
        kfp_header = pipeline_spec_builder.extract_comments_from_pipeline_spec(spec, pipeline_func.description)
        header = _yaml_header(spec, pipeline_func.description)
        if text.startswith(kfp_header):
            text = header + text[len(kfp_header):]
        try:
            yaml.safe_load(header)          # the reference (pure-Python) loader on the part made of user text
            documents = list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except yaml.YAMLError as exc:
            raise SameError(f"kfp wrote a pipeline.yaml that is not valid YAML ({visible(str(exc))[:300]})",
                            path=str(pipeline_yaml)) from None
        if not documents or documents[0] != spec:
            raise SameError("kfp wrote a pipeline.yaml that does not read back as the pipeline it compiled",
                            path=str(pipeline_yaml))
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, pipeline_yaml)
    finally:
        tmp.unlink(missing_ok=True)


def _yaml_header(spec: dict, description: str | None) -> str:
    """kfp's header comment (``# PIPELINE DEFINITION``, name, description, inputs with defaults), made
    by kfp's own function from a copy of the spec whose every string is escaped onto one line."""
    from kfp.compiler import pipeline_spec_builder

    def shown(value):
        if isinstance(value, str):
            return visible(value.replace("\\", "\\\\"))   # kfp quotes it: 'text'
        if isinstance(value, (list, dict)):
            return visible(json.dumps(value, ensure_ascii=False))
        return value

    def signature(definitions: dict) -> dict:
        parameters = {}
        for name, body in definitions.get("parameters", {}).items():
            copy_ = {"parameterType": body["parameterType"]}
            if "defaultValue" in body:
                value = body["defaultValue"]
                if body["parameterType"] == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
                    value = int(value)
                copy_["defaultValue"] = shown(value)
            parameters[visible(name)] = copy_
        artifacts = {visible(name): {"artifactType": {"schemaTitle": visible(body["artifactType"]["schemaTitle"])}}
                     for name, body in definitions.get("artifacts", {}).items()}
        return {"parameters": parameters, "artifacts": artifacts}

    root = {key: signature(spec["root"][key]) for key in ("inputDefinitions", "outputDefinitions")
            if key in spec["root"]}
    safe = {"pipelineInfo": {"name": visible(spec["pipelineInfo"]["name"])}, "root": root}
    header = pipeline_spec_builder.extract_comments_from_pipeline_spec(safe, visible(description or ""))
    if not all(line.startswith("#") and line.isprintable() for line in header.splitlines()):
        raise SameError("could not write pipeline.yaml's header comment safely; please report this")
    return header


def compile_yaml(pipeline_py: Path, pipeline_yaml: Path) -> None:
    """Import the generated pipeline.py and compile it with kfp's compiler."""
    module_name = "_same_nb_kfp_" + hashlib.sha256(str(pipeline_py.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(module_name, pipeline_py)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module           # kfp reads the step functions' source through their module
    try:
        spec.loader.exec_module(module)
        write_pipeline_yaml(module.notebook_pipeline, pipeline_yaml)
    except (ValueError, TypeError) as exc:      # e.g. a resource quantity kfp does not accept
        raise SameError(f"kfp rejected the pipeline: {visible(str(exc))}", path=str(pipeline_py)) from None
    finally:
        sys.modules.pop(module_name, None)
