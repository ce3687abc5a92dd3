"""The evaluator: a billing run over a compiled catalogue (`engine.evaluator.run.bill`).

Its hot modules run compiled by mypyc when a build of these very sources exists
(`engine.evaluator.native`), else as the plain Python they are.
"""

from engine.evaluator.native import activate

activate(__path__, "engine.evaluator")
