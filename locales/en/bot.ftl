# Main menu
welcome =
    👋 Hello, { $name }!

    Buy a virtual number for SMS codes or order SMM services, paid from your wallet.
    💰 Balance: <b>{ $balance }</b>
menu-title = Main menu · 💰 <b>{ $balance }</b>
menu-buy = 📱 Buy a number
menu-smm = 📈 SMM services
menu-balance = 💰 Balance
menu-history = 🧾 History
menu-language = 🌐 Language
menu-help = ❓ Help
button-back = « Back
button-menu = « Main menu
coming-soon = 🚧 This part of the shop is coming soon.

# Balance
balance-title = 💰 Your balance: <b>{ $balance }</b>
balance-history-title = Last operations:
balance-history-empty = No operations yet.
balance-row = { $date } · <b>{ $delta }</b> · { $reason }
balance-topup-hint = To top up, contact the shop's support.
reason-topup = top-up
reason-deduct = correction by the shop
reason-purchase = purchase
reason-refund = refund
reason-other = { $reason }

# Language
language-choose = 🌐 Choose your language:
language-set = ✅ Language: English
language-name-en = 🇬🇧 English
language-name-ru = 🇷🇺 Русский

# Help
help-text =
    <b>How it works</b>
    1. Top up your wallet.
    2. Pick a country and a service and buy a number.
    3. The code arrives in this chat by itself.

    If no code arrives, the number is cancelled and the money comes back to your wallet.

# Notices
banned-notice = ⛔ Your account is restricted. You can still view and close your orders.
throttled-notice = ⏳ Too many requests, please slow down.
error-unexpected = 😔 Sorry, something went wrong. Please try again.
unknown-command = 🤷 Unknown command. Send /start to open the menu.
unknown-text = Use the buttons below, or send /start to open the menu.
callback-stale = This button is outdated. Send /start to open the menu.

# Wallet notices sent to the user
topup-received = 💰 Your wallet was topped up by <b>{ $amount }</b>. Balance: <b>{ $balance }</b>
deduct-received = 💰 <b>{ $amount }</b> was deducted from your wallet by the shop. Balance: <b>{ $balance }</b>

# Bot commands (the menu button)
command-start = Open the main menu
command-balance = Your balance
command-help = How it works
command-history = Your numbers
command-language = Change the language
command-topup = Admin: top up a wallet
command-deduct = Admin: deduct from a wallet
command-audit = Admin: check balances against the ledger

# Admin
admin-topup-usage =
    Usage: <code>/topup &lt;telegram id or @username&gt; &lt;amount&gt; [comment]</code>
    Amount: a positive number with at most 6 decimals, e.g. <code>12.50</code>
admin-deduct-usage =
    Usage: <code>/deduct &lt;telegram id or @username&gt; &lt;amount&gt; [comment]</code>
    Amount: a positive number with at most 6 decimals, e.g. <code>12.50</code>
admin-user-not-found = User { $query } not found. They must have started the bot first.
admin-topup-done = ✅ Topped up { $user } by <b>{ $amount }</b>. New balance: <b>{ $balance }</b>
admin-deduct-done = ✅ Deducted <b>{ $amount }</b> from { $user }. New balance: <b>{ $balance }</b>
admin-deduct-insufficient-error = ❌ { $user } has only <b>{ $balance }</b>: nothing was deducted.
admin-duplicate = This command was already carried out.
admin-audit-ok = ✅ Audit: { $users } users checked, every balance equals its ledger.
admin-audit-mismatch = ❌ Audit: { $users } users checked, { $count } mismatches:
admin-audit-row = user { $user }: balance { $balance }, ledger { $ledger }

# Buying a number
demo-label = 🧪 DEMO: numbers and codes here are simulated.
otp-countries-title = 📱 Choose a country:
otp-countries-empty = 😔 Nothing is on sale right now. Please try again later.
otp-country-button = { $flag } { $name } · from { $price }
otp-services-title = { $flag } <b>{ $country }</b>: choose a service
otp-service-button = { $service } · { $price } · { $stock }
otp-by-service = 🔤 Choose by service
otp-by-service-title = 🔤 Choose a service:
otp-service-name-button = { $service }
otp-service-countries-title = <b>{ $service }</b>: choose a country (best price first)
otp-service-country-button = { $flag } { $name } · { $price } · { $stock }
otp-search = 🔎 Search
otp-search-prompt = 🔎 Type part of a country's name (in English or Russian):
otp-search-empty = Nothing found for “{ $query }”. Try another name.
otp-search-results = 🔎 Countries matching “{ $query }”:
otp-confirm =
    <b>{ $service }</b> · { $flag } { $country }
    Price: <b>{ $price }</b>
    Your balance: { $balance } → after purchase: <b>{ $after }</b>
otp-confirm-button = ✅ Buy for { $price }
otp-not-enough =
    <b>{ $service }</b> · { $flag } { $country }
    Price: <b>{ $price }</b>
    Your balance: { $balance }. You need <b>{ $missing }</b> more.
    To top up, contact the shop's support.
otp-price-changed = The price has changed to { $price }. Please check and confirm again.
otp-out-of-stock = 😔 This number is no longer available. Please choose another.
otp-too-many = You already have { $limit } open numbers. Finish or cancel one first.
otp-buying = ⏳ Buying your number…
otp-already-bought = This purchase was already made.
button-prev = ◀
button-next = ▶
page-counter = { $page }/{ $pages }

# The activation card
otp-card-number = 📱 <code>{ $phone }</code>
otp-card-what = { $service } · { $flag } { $country } · { $price }
otp-card-waiting = ⏳ Waiting for the SMS… { $minutes } min left.
otp-card-cancel-hint = You can cancel from { $time } UTC.
otp-card-code = ✅ Code: <code>{ $code }</code>
otp-card-finished = ✔️ Finished.
otp-card-cancelled = ❌ Cancelled. { $price } was returned to your balance.
otp-card-expired = ⌛ No SMS arrived in time. { $price } was returned to your balance.
otp-card-failed = 😔 The purchase failed: { $reason } { $price } was returned to your balance.
otp-card-unknown = ⏳ The provider did not answer in time. We are checking the order; if no number was issued, the money comes back to your balance.
otp-card-buying = ⏳ Buying your number…
otp-button-cancel = ❌ Cancel
otp-button-finish = ✔️ Finish
otp-button-another = 📨 Another SMS
otp-button-full-sms = 📄 Show full SMS
otp-button-refresh = 🔄 Refresh
otp-reason-no_numbers = no numbers are available right now.
otp-reason-provider_error = the provider refused the order.
otp-reason-no_upstream_order = the provider issued no number.
otp-reason-other = the order could not be completed.
otp-cancel-too-early = You can cancel in { $seconds } s (providers refuse earlier cancels).
otp-try-later = The provider is not answering. Nothing changed; please try again in a minute.
otp-wrong-state = This number can no longer do that.
otp-not-found = This order was not found.
otp-another-requested = 📨 Another SMS requested. The new code will appear here.
otp-full-sms = 📄 { $text }
otp-no-full-sms = The provider sent no full text for this SMS.

# Messages pushed into the chat
otp-code-message = 🔑 <b>{ $service }</b> code for <code>{ $phone }</code>: <code>{ $code }</code>
otp-closed-cancelled = ❌ The order for { $service } (<code>{ $phone }</code>) was cancelled by the provider. { $price } was returned to your balance.
otp-closed-expired = ⌛ No SMS arrived for { $service } (<code>{ $phone }</code>). The number was cancelled and { $price } was returned to your balance.
otp-closed-failed = 😔 The purchase of { $service } failed: the provider issued no number. { $price } was returned to your balance.

# History
history-title = 🧾 Your numbers (page { $page }/{ $pages }):
history-empty = 🧾 You have no numbers yet.
history-row = #{ $id } · { $date } · { $service } · { $flag } · { $phone } · { $price } · { $status }{ $code }
history-code = {" "}· code { $code }
history-open = Open #{ $id }
status-buying = buying
status-unknown = checking
status-waiting = waiting
status-received = code received
status-finished = finished
status-cancelled = cancelled, refunded
status-expired = expired, refunded
status-failed = failed, refunded
