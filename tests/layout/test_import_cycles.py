"""No import circles in `pipeline/` or `plugins/`: lower layers take plain arguments, never the stage context."""

from __future__ import annotations

from import_graph import cycles, import_graph, module_files


def test_the_graph_sees_our_modules_and_their_imports() -> None:
    graph = import_graph()
    assert "pipeline.stages.send" in module_files()
    assert "pipeline.smtp.pool" in graph["pipeline.stages.send"]
    assert "pipeline.context" in graph["pipeline.stages.route"]


def test_a_circle_is_found_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_ours_imports_itself_through_others() -> None:
    found = cycles(import_graph())
    assert found == [], "import circles: " + "; ".join(" → ".join(circle) for circle in found)
