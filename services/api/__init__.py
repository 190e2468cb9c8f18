"""The reseller API: the shop as an upstream for other shops, bots and scripts.

Protocol-neutral parts, used by every protocol the HTTP server speaks (bot/reseller_api.py):

- `keys.py`: API keys (created in the bot, shown once, stored as SHA-256) and the admin's
  per-user switch; `authenticate()` answers who is calling, checked against bans every time;
- `shop.py`: `ResellerShop`, the facade the protocols call: balance, the OTP catalog at API
  prices, buying, reading and ending a customer's own activations;
- `smm.py`: `ResellerSmm`, the SMM side on the same pattern (given to `ResellerShop` as `smm`);
- `errors.py`: the refusals the facade raises, each protocol turns them into its own tokens;
- `protocol.py`: `ApiRequest` and `Reply`, what a protocol module takes and returns;
- `ratelimit.py`: requests per key and endpoint (RESELLER_API_RATE_PER_MIN).

Protocol modules: `handler_api.py` (SMS-Activate-compatible `/stubs/handler_api.php`),
`toolvico.py` (`/api/v1/otp`, `/api/v1/smm`), `smm_v2.py` (the SMM panel v2 `/api/v2`). Nothing
here imports aiohttp or aiogram: a protocol is a function from a request to a reply.
"""
