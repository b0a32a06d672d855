"""Relative links to repository files become links to the file on GitHub.

A page may link to a file of the repository by its path from the repository
root, such as ``[results](benchmarks/results/cpu_2core.json)``: that names no
page of the site. Before MyST resolves its
references, every such link whose target is a file of the repository (outside
``docs/``) is turned into a link to that file on GitHub; any other unresolved
link is left to MyST, which reports it.
"""

from __future__ import annotations

import pathlib
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform


class RepositoryFileLinks(SphinxPostTransform):
    """Rewrites unresolved MyST links that name a repository file."""

    default_priority = 5  # before MyST's resolver (9)

    def run(self, **kwargs: Any) -> None:
        del kwargs
        config = self.app.config
        root = pathlib.Path(config.repo_links_root).resolve()
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst" or node.get("refdomain") == "doc":
                continue
            target = node.get("reftarget", "")
            path, _, anchor = target.partition("#")
            candidate = (root / path).resolve()
            if (
                not path
                or not candidate.is_file()
                or not candidate.is_relative_to(root)
                or candidate.is_relative_to(root / "docs")
            ):
                continue
            url = f"{config.repo_links_url}/{candidate.relative_to(root).as_posix()}"
            reference = nodes.reference(
                "", "", internal=False, refuri=url + (f"#{anchor}" if anchor else "")
            )
            reference += node.children
            node.replace_self(reference)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("repo_links_root", "..", "env")
    app.add_config_value("repo_links_url", "", "env")
    app.add_post_transform(RepositoryFileLinks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
