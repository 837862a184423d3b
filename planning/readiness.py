"""The readiness check of the "start united" planning cycle (pure: no ORM).

Eleven statements a company should be able to answer yes to before it plans united
(from the CCO role's seed text "Do You Need a Chief Customer Officer?"). A cycle scores
1 per "yes", 0.5 per "partly" and 0 per "no" or unanswered, out of 11.
"""

from collections.abc import Mapping

STATEMENTS = (
    "There is someone in our company who clarifies what we are to accomplish with customers.",
    "There is a clear process to drive alignment for what will be accomplished.",
    "We have a road map for the customer work and know where progress will be measured.",
    "Clear metrics exist for measuring progress which everyone agrees to use.",
    "There is real clarity of everyone's roles and responsibilities.",
    "People really participate and care about the customer work.",
    "Appropriate resources are allocated to make a real difference to customers.",
    "There is an understandable process for people to work together.",
    "The work is considered attainable.",
    "A process exists for marketing achievements to customers and internally.",
    "Recognition and reward are wired to motivate customer work.",
)

POINTS = {"yes": 1.0, "partly": 0.5, "no": 0.0}


def score(answers: Mapping[int, str]) -> float:
    """Return the points of ``answers`` (statement number -> yes/partly/no) out of 11."""
    return sum(POINTS[answers[number]] for number in answers if 1 <= number <= 11)


def share(answers: Mapping[int, str]) -> float:
    """Return the score as a share of the 11 statements, in [0, 1]."""
    return score(answers) / len(STATEMENTS)
