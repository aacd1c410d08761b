"""The wording cues of routing (:mod:`agent.routing`): what the shape of a message says about where it goes.

Each pattern is about how people put a question or a request (English and the languages lab members write),
never about this lab: names and tool words come from the lab and the tools' declarations.
"""

from __future__ import annotations

import re

__all__ = [
    "ADVICE",
    "ASKED_FOR",
    "ASKS_STATE",
    "BARE_NUMBER",
    "DOCS",
    "GENERIC",
    "GREETING_ONLY",
    "LIST_QUESTION",
    "LIVE_NOW",
    "LONG_ID",
    "NEW_NAME",
    "OPENING",
    "PAST",
    "PERMISSION",
    "REQUEST",
    "WEAK_DOCS",
]

# How the lab works: procedures, reasons, rules, permissions, schedules, who does what.
DOCS = re.compile(
    r"\b(?:how (?:do|does|can|should|to|would)|why|explain|policy|policies|procedure|runbook|documentation|docs|guide"
    r"|who (?:has to|must|may|can|approves?|is allowed)|am i allowed|are we allowed|is it allowed|allowed to"
    # A wish followed by whether it is permitted ("i need a vm with a 1tb disk, is that ok?") asks for the rule.
    r"|is (?:that|this) (?:ok|okay|fine|allowed|possible|a problem)|would (?:that|this) (?:work|be ok|be fine)"
    # ... or by what to know first ("i need a vm with a 700gb disk, anything i should know?" got vm.provision).
    r"|(?:anything|something|what|things?)\s+(?:else\s+)?(?:i|we)\s+(?:should|need to|must|have to|ought to)\s+"
    r"(?:know|consider|watch out|be aware|keep in mind)|any (?:tips|advice|caveats|gotchas|pitfalls)"
    r"|may i|may a|can i|can a|can my|can our|should i|supposed to|what is our|what's our|what are our|how often"
    r"|rules? (?:for|about|on)|naming|conventions?"
    r"|how long (?:is|are|do|does|may|can)|when (?:is|are|do|does)|objective|rpo|rto|quota|quotas|limit for"
    # What a thing is for: its purpose is written down, not read from its state ("proj-pg02 - what's it for?").
    r"|used for|purpose|what(?:'s|s| is| are| was)\b[^?.!]{0,60}\bfor(?=\W*$)"
    # Defaults and limits are set down, not read off a thing's state ("whats the default template for new vms").
    r"|what(?:'s|s| is| are) (?:the |our )?(?:default|max(?:imum)?|min(?:imum)?|limits?)\b"
    # What happens in a case, and what one does about it, is written down: "what happens if the backup disk fills
    # up", "a snapshot failed verification, what do i do first" (both went to the live backup status).
    r"|what (?:happens|would happen|will happen)\b|what (?:do|should|must|can) (?:i|we) do\b|what to do\b"
    # Whether a limit exists is a rule ("is there a cap on how much log ray.logs gives back" got the job list).
    r"|(?:is there|are there|any) (?:a |an |any )?(?:cap|limit|ceiling|maximum|max|size limit|time limit)s?\b"
    # What a word means is written down ("what does pending mean for a backup?"), whatever state it names.
    r"|what (?:does|do)\b[^?.!]{0,60}\bmean|meaning of|what is meant by|definition of"
    # "according to the documentation" in the languages lab members write.
    r"|dokumentation|documentaci[oó]n|laut (?:doku|wiki)|selon la doc)\b",
    re.I,
)
# A question for the live state of things: a list, a count, a state.
# A state only the live system knows, or "right now": with a family's word, the question is for its tools even when a
# page matches it better ("is pbs healthy?" went to the backup pages, and the answer spelt PBS out wrongly).
# Not "running" ("what hardware is the backup server running on?"), "down" ("the process if a node goes down"),
# "now", "free" or "left": each as often says how something works.
LIVE_NOW = re.compile(
    r"\b(?:right now|currently|at the moment|stopped|offline|online|failed|failing|broken|healthy|unhealthy"
    r"|status|pending|queued)\b"
    # "Down" after "is"/"are" is a state ("are any hypervisors down"); after "goes" it says what happens.
    r"|\b(?:is|are|isn't|aren't)\s+(?:[\w-]+\s+){0,3}?down\b",
    re.I,
)
ASKS_STATE = re.compile(
    r"^\W*(?:which|what|whats|wat|wht|list|show|any|anything|how many|are there|is there|count|give me|get|find"
    r"|tell me|is|are|has|have|did|does|was|were"
    # "Do the VMs have backups?" asks the state as "does" does; "do I need ...?" asks what one must do.
    r"|do\s+(?:the|any|all|our|my|these|those|both)\b)\b"
    r"|\b(?:are there|is there|do we have|do i have|now|today|running|down|working|free|full|left)\b"
    # A terse check ending the message: "backups all good?", "pbs ok?" (the model sent the first to the pages).
    r"|\b(?:all\s+)?(?:good|ok|okay|fine|alright)\W*$|" + LIVE_NOW.pattern,
    re.I,
)
# A question about the lab as it is that also asks what to make of it or do next: "qso-vae-dev backup failed, what
# now?", "my job has been PENDING forever, what's going on?". The tools answer; the pages' best sentence follows.
ADVICE = re.compile(
    # ("What do I do", "how do I fix" are DOCS cues: such a message goes to the pages, the tools when they say nothing.)
    r"\bwhat now\b|\bwhat next\b|\bnext steps?\b|\bwhat(?:'s|s| is) (?:going on|wrong|happening|up with)\b",
    re.I,
)
# Cues of DOCS that ask what one may do; "which templates can I run?" asks for a list with one of them.
PERMISSION = re.compile(
    r"^(?:can i|may i|can a|can my|can our|may a|allowed to|am i allowed|are we allowed|is it allowed)$", re.I
)
# Cues a tool may answer too ("can I run 10 jobs at once?", "what is my quota?"); the others (when, why, how
# do I, how often, policy) ask how the lab works whatever tool fits the words ("when are backups checked?").
WEAK_DOCS = re.compile(
    r"^(?:can i|may i|can a|can my|can our|may a|allowed to|am i allowed|are we allowed|is it allowed|should i"
    r"|is (?:that|this) \w+(?: \w+)?|would (?:that|this) \w+(?: \w+)?"
    r"|quota|quotas"
    r"|limit for|how long (?:is|are|do|does|may|can))$",
    re.I,
)
# A question for a list of things: "which/what" followed by a noun (not "what is", "what can", "which of").
LIST_QUESTION = re.compile(
    r"^\W*(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|can|could|may|might|should|would|will|if|about|of"
    r"|happens|kind|sort|type|'s)\b)[a-z]",
    re.I,
)
# What a "which ...?" or "what's the ...?" question asks for: the words up to its verb ("which port is the dashboard
# on", "what's the subnet for ..."); an "of" phrase belongs to it ("what share of the vms are ...").
ASKED_FOR = re.compile(
    r"^\W*(?:(?:which|what|whats|wat|wht)\s+(?!(?:is|are|was|were|do|does|did|can|could|may|might|should|would|will|if"
    r"|about|of|happens|kind|sort|type|'s)\b)|what(?:'s|s| is| are)\s+(?:the|our|a|an)\s+)"
    r"(?P<head>(?:[\w-]+\s+){0,2}?[\w-]+)(?P<of>\s+of\s+(?:the\s+|our\s+|my\s+)?[\w-]+(?:\s+[\w-]+)?)?"
    r"\s+(?P<verb>is|are|was|were|do|does|did|can|could|should|will|would|has|have|had|on|in|for|at|to|with|runs?)\b",
    re.I,
)
# A question about any such thing, not one that is: "does a vm i just made get backups on its own?", "will new
# jobs be queued?", "if I stop a VM, is it still backed up?". Its family's tools list the things there are.
GENERIC = re.compile(
    r"^\W*(?:does|do|will|would)\s+(?:a|an|new|a new|any new)\s+[a-z]"
    # "which template id are new vms cloned from": what any new one gets (it went to the VM list).
    r"|\b(?:are|do|does|will|would|get|gets)\s+(?:the\s+)?new(?:ly (?:made|created))?\s+[a-z][\w-]*s\b"
    r"|\bnew(?:ly (?:made|created))?\s+[a-z][\w-]*s\s+(?:are|get|start|go|come)\b"
    r"|(?<!check )(?<!see )(?<!know )(?<!out )\bif (?:i|we|you|someone|somebody|a|an)\b",
    re.I,
)
# The verbs of a question about what happened: "what time did the backup run" asks the live record, not a property.
PAST = re.compile(r"^(?:was|were|did|had)$", re.I)
LONG_ID = re.compile(r"\b\d{6,}\b|\b[a-z]+_[0-9a-f]{6,}\b", re.I)
# Where a request opens: the message's start, or after "please", "I need", "can you" and the like.
# ("I need a VM ..." opens with a subject before the asking phrase "need a vm".)
REQUEST = r"(?:^\W*(?:please\s+)?(?:i |we )?|\b(?:i need|i want|i'd like|can you|could you|please|pls)\b[^.?!]{0,30}?)"
# A request's opening: its first words, after a "please" or a "can you" ("start qso-vae-dev back up" opens with
# "start"; its "back up" is no request for a backup).
OPENING = r"^\W*(?:(?:please|pls|plz|ok|okay|now|then)\W+)?(?:(?:can|could|would|will) you\s+(?:please\s+)?)?"
# A number standing alone, of an id's length ("start 130 and 132"; not "4 cores", "node07", "2.5").
BARE_NUMBER = re.compile(r"(?<![\w.-])\d{3,}(?![\w.-]|\s*(?:gb|gib|mb|cores?|cpus?|gpus?|%|rows|seconds|s)\b)", re.I)
# A request names the thing it makes: "a VM named cosmo-nb", "call it hod-test".
NEW_NAME = re.compile(r"\b(?:named|called|name it|call it)\s+[`'\"]?[a-z0-9][\w-]*", re.I)
GREETING_ONLY = re.compile(
    r"^\W*(?:hi|hello|hey|thanks?|thank you|cheers|good (?:morning|afternoon|evening)|bye)\b", re.I
)
