"""Each line of a documentation answer shows the passage it draws on."""

from __future__ import annotations

from agent.attribution import cite_lines

ACCESS = {
    "citation": "[access.md § Getting in from outside]",
    "text": "- **Cloudflare Zero Trust (ZTNA)** for staff and outside collaborators: web apps such as Proxmox,\n"
    "  Grafana and OpenWebUI sit behind it, and access is granted per application.\n"
    "- **Tailscale** for remote SSH and database access from your laptop.",
}
RAY = {
    "citation": "[kubernetes-ray.md § Job templates]",
    "text": "Jobs run from reviewed templates. Extra pip packages are only allowed from the configured allow-list, "
    "because the cluster has no internet access.",
}


def test_an_uncited_line_gets_the_citation_of_the_passage_it_draws_on() -> None:
    # Asked "how do I get into the cluster from home": the answer was the access page's, the sources line named
    # only the page of a quote appended after it.
    answer = (
        "To get into the cluster from home, use Cloudflare Zero Trust (ZTNA) for staff and outside collaborators. "
        "You can reach web apps such as Proxmox, Grafana and OpenWebUI through it."
    )
    assert cite_lines(answer, [RAY, ACCESS]) == f"{answer} [access.md § Getting in from outside]"


def test_cited_lines_code_notes_and_lines_about_nothing_stay_as_written() -> None:
    answer = "\n".join(
        [
            "Hello there, happy to help!",
            "Tailscale gives remote SSH access from your laptop [access.md § Getting in from outside].",
            "```sh",
            "tailscale up remote SSH database access laptop",
            "```",
            "_(Left out 1 sentence(s) of the model's: “Tailscale …”)_",
        ]
    )
    assert cite_lines(answer, [ACCESS, RAY]) == answer


def test_consecutive_lines_from_one_passage_are_cited_once() -> None:
    answer = (
        "- Cloudflare Zero Trust for staff and outside collaborators\n"
        "- Tailscale for remote SSH and database access from your laptop\n"
        "\n"
        "Extra pip packages come only from the configured allow-list."
    )
    cited = cite_lines(answer, [ACCESS, RAY]).split("\n")
    assert not cited[0].endswith("]")
    assert cited[1].endswith("[access.md § Getting in from outside]")
    assert cited[3].endswith("[kubernetes-ray.md § Job templates]")


def test_no_line_of_a_code_block_is_cited_however_it_is_fenced() -> None:
    # A small model writes the command on the fence's own line; tildes fence a block too.
    lines = ["```sh Tailscale remote SSH database access laptop", "```", "~~~", "Tailscale remote SSH laptop", "~~~"]
    answer = "\n".join(lines)
    assert cite_lines(answer, [ACCESS]) == answer
