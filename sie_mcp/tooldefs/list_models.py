# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY
from tools.context import Limits
from tools.schemas import ModelsResult


def arguments(limits: Limits) -> type[Arguments]:
    class ListModelsArguments(Arguments):
        pass

    return ListModelsArguments


TOOL = ToolDeclaration(
    name="list_models", title="List models", rank=45, groups=("text", "graphs", "retrieval"), annotations=READ_ONLY,
    handler="tools.models:list_models_async", arguments=arguments, result=ModelsResult,
    description="""
        The models here: id (pass as `model`), task (which tools take it), availability (unavailable:
        `note` says why), state, default_for.""",
    summary="catalog models, their task (which tools take them), whether usable here (`availability`: "
            "`bundled`, `local`, `cached` in the HF cache, `downloadable`, `unavailable` with a `note` saying "
            "why), whether resident (`device`/`host`/`cold`), which tools use them by default")
