"""One edit request (paper §2.2: a prompt and its new answer, with the prompts that score it, App. A.1).

No imports of the project: data loading, the layouts and the synthetic stream build on it; the
editor reads only its prompt and target.

    r = Request("The capital of Zorb is", "Quill", rephrase=["Zorb's capital city is"])
"""

from dataclasses import dataclass, field


@dataclass
class Request:
    """one edit request: prompt -> target, with its evaluation prompts"""

    prompt: str
    target: str
    rephrase: list = field(default_factory=list)  # generalization prompts, scored against target
    # probe name -> [(prompt, answer)]: facts the edit must keep; "" is the unnamed probe, the
    # others are also their own metric
    locality: dict = field(default_factory=dict)
    subject: str = ""
    # WikiBigEdit personas prompts, scored against target
    personas: list = field(default_factory=list)
    # [(prompt, answer)]: WikiBigEdit multi-hop questions
    reasoning: list = field(default_factory=list)
    # [(prompt, answer)]: EasyEdit portability probes
    portability: list = field(default_factory=list)
    # where it was read ("zsre_eval.json record 2"): named by errors, not part of what is edited
    where: str = field(default="", compare=False, repr=False)


if __name__ == "__main__":
    r = Request("The capital of Zorb is", "Quill")
    print(
        f"{r}; equal to itself read elsewhere: {r == Request(r.prompt, r.target, where='x.json record 3')}"
    )
