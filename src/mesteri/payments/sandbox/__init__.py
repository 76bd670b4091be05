"""The sandbox payment provider: a provider that runs inside the app (SPEC 5.2).

It keeps its own records in its own transactions, as an outside provider would, serves a
hosted checkout and an onboarding page, and reports every change through webhooks signed
like Stripe's and posted to ``/api/v1/payments/webhooks/sandbox``.
"""
