"""Resources the emulator creates but cannot identify, each with its reason and the test that covers it instead.

The rehearsal summary accounts for every template resource. One of a type the emulator supports must come
back from CloudFormation with a physical id, and where the service has an API the emulator answers, the
resource must be found through it. One that does not (no id, or an id nothing answers to) fails the
rehearsal, unless it is listed here: a short list, each entry saying what the resource is, why the emulator
cannot give it an id, and which test checks it instead. Fixing the emulator (see `patches.py`) is preferred
to listing; an entry is for what cannot be fixed honestly.

Fixed rather than listed so far: `AWS::EC2::SecurityGroupIngress` (moto authorized the rule but gave the
resource no physical id; `patches.py` gives it the rule's id, as CloudFormation does).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class ListedGap:
    resource_type: str
    what: str  # the resource, in our stacks' terms
    why: str  # why the emulator cannot give it a physical id, or cannot find it by that id
    covered_by: str  # the test (file::name) that checks it instead
    logical_id_pattern: str = "*"  # fnmatch pattern, when only some resources of the type are meant

    def matches(self, resource_type: str, logical_id: str) -> bool:
        return resource_type == self.resource_type and fnmatchcase(logical_id, self.logical_id_pattern)


# Empty while every supported type our templates use is identified (see the module docstring); an entry
# names one resource type, and a logical-id pattern when the gap concerns only some of its resources.
LISTED_GAPS: tuple[ListedGap, ...] = ()


def listed_gap(resource_type: str, logical_id: str, gaps: tuple[ListedGap, ...] = LISTED_GAPS) -> ListedGap | None:
    return next((gap for gap in gaps if gap.matches(resource_type, logical_id)), None)
