"""The billing engine: calendar, money, catalogue, data model, evaluator and store.

Its hottest helpers (calendar, proration, rounding) run compiled with the evaluator when a build
of these very sources exists (`engine.evaluator.native`).
"""

from engine.evaluator.native import activate

activate(__path__, "engine")
