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
    1. Top up your wallet (ask support below).
    2. 📱 Pick a country and a service and buy a number. The code arrives in this chat by itself.
    3. 📈 Or order SMM services: choose a service, send the link and the quantity.

    <b>Refunds</b>
    • No code before the number's time runs out: it is cancelled and the full price comes back to your wallet.
    • You can cancel a number yourself after { $delay } min while no code has arrived: full refund.
    • Once a code has arrived the number is used and not refunded.
    • SMM orders the provider cancels are refunded in full; partly delivered ones in proportion to what was not delivered.

    Support: { $support }

help-no-support = the shop's admins
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
admin-user-ambiguous = { $query } matches several users: { $ids } — use the id.
admin-topup-done = ✅ Topped up { $user } by <b>{ $amount }</b>. New balance: <b>{ $balance }</b>
admin-deduct-done = ✅ Deducted <b>{ $amount }</b> from { $user }. New balance: <b>{ $balance }</b>
admin-deduct-insufficient-error = ❌ { $user } has only <b>{ $balance }</b>: nothing was deducted.
admin-duplicate = This command was already carried out.
admin-audit-ok = ✅ Audit: { $users } { $users ->
        [one] user
       *[other] users
    } checked, every balance equals its ledger.
admin-audit-mismatch = ❌ Audit: { $users } { $users ->
        [one] user
       *[other] users
    } checked, { $count } { $count ->
        [one] mismatch
       *[other] mismatches
    }:
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
otp-confirm-again = Please check the price and confirm again.
otp-out-of-stock = 😔 This number is no longer available. Please choose another.
otp-too-many = You already have { $limit } open { $limit ->
        [one] number
       *[other] numbers
    }. Finish or cancel one first.
otp-too-many-cancels = You cancelled { $limit } { $limit ->
        [one] number
       *[other] numbers
    } without a code in the last 24 hours. You can buy again in { $wait } (at { $time } UTC).
otp-buying = ⏳ Buying your number…
otp-already-bought = This purchase was already made.
button-prev = ◀
button-next = ▶
page-counter = { $page }/{ $pages }

# The activation card
otp-card-number = 📱 <code>{ $phone }</code>
otp-card-what = { $service } · { $flag } { $country } · { $price }
otp-card-waiting = ⏳ Waiting for the SMS… { $minutes } min left.
otp-card-cancel-hint = ⏱ Cancel is available in { $time }.
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
otp-cancel-too-early = Cancel is available in { $time }. Providers refuse earlier cancels.
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

# SMM services
smm-demo-label = 🧪 DEMO: SMM orders here are simulated; nothing is delivered.
smm-categories-title = 📈 SMM services: choose a category
smm-categories-empty = 😔 No SMM services are on sale right now. Please try again later.
smm-category-button = { $name } · { $count }
smm-category-other = Other
smm-my-orders = 📋 My SMM orders
smm-services-title = <b>{ $category }</b>: choose a service
smm-service-button = { $name } · { $price }
smm-rate-per-1000 = { $price } / 1000
smm-rate-per-package = { $price } / package
smm-card-title =
    <b>{ $name }</b>
    { $category }
smm-card-price = 💵 Price: <b>{ $price }</b>
smm-card-range = 🔢 Quantity: from { $min } to { $max }
smm-card-refill-yes = ♻️ Refill: available
smm-card-refill-no = ♻️ Refill: not available
smm-card-cancel-yes = 🚫 Cancelling an order: possible while it runs
smm-card-cancel-no = 🚫 Cancelling an order: not possible
smm-card-dripfeed = 💧 Drip-feed: available (delivery in several runs)
smm-button-order = 🛒 Order
smm-button-close-form = ✖️ Close form
smm-form-cancelled = ✖️ Form closed: nothing was ordered or charged.
smm-form-closed = This form is already closed. Your orders and their status are in 📋 My SMM orders.
smm-service-gone = 😔 This service is no longer available. Please choose another.
smm-ask-link =
    <b>{ $name }</b>
    🔗 Send the link (starting with https://) to the page, post or profile to promote.
smm-ask-quantity =
    <b>{ $name }</b>
    🔢 Send the quantity: a whole number from { $min } to { $max }.
    Price: { $price }
smm-ask-comments =
    <b>{ $name }</b>
    💬 Send the comments, one per line: from { $min } to { $max } { $max ->
        [one] line
       *[other] lines
    }. The quantity is the number of lines.
smm-ask-answer =
    <b>{ $name }</b>
    🗳 Send the number of the poll answer to vote for (1 is the first answer).
smm-ask-usernames =
    <b>{ $name }</b>
    👤 Send the usernames to mention, separated by spaces or lines (e.g. @name1 @name2).
smm-ask-runs =
    <b>{ $name }</b>
    💧 Drip-feed delivers the whole quantity in every run: you get and pay for { $quantity } × runs.
    🔢 For example: { $example } for { $price }.
    Send the number of runs (from { $min } to { $max }), or order { $quantity } once, without drip-feed.
smm-ask-interval =
    <b>{ $name }</b>
    ⏱ Send the interval between runs in minutes (from { $min } to { $max }).
smm-button-no-dripfeed = ➡️ No drip-feed, order at once
smm-link-empty-error = ❌ The link is empty.
smm-link-too-long-error = ❌ The link is too long: at most { $max } { $max ->
        [one] character
       *[other] characters
    }.
smm-link-not-url-error = ❌ That is not a link. It must start with http:// or https://, e.g. https://instagram.com/p/abc
smm-quantity-not-number-error = ❌ The quantity must be a whole number from { $min } to { $max }.
smm-quantity-range-error = ❌ The quantity must be from { $min } to { $max }.
smm-comments-empty-error = ❌ Send at least one comment, one per line (from { $min } to { $max }).
smm-comments-count-error = ❌ You sent { $count } { $count ->
        [one] comment
       *[other] comments
    }; this service takes from { $min } to { $max }, one per line.
smm-comment-too-long-error = ❌ A comment is too long: at most { $max } { $max ->
        [one] character
       *[other] characters
    } each.
smm-answer-range-error = ❌ Send the answer's number: a whole number from 1 to { $max }.
smm-usernames-error = ❌ Send usernames (letters, digits, _ and .), separated by spaces or lines.
smm-runs-range-error = ❌ The number of runs must be from { $min } to { $max }.
smm-interval-range-error = ❌ The interval must be from { $min } to { $max } { $max ->
        [one] minute
       *[other] minutes
    }.
smm-dripfeed-off-error = ❌ This service has no drip-feed.
smm-input-error = ❌ This value cannot be ordered. Please check it.
smm-confirm-title = <b>{ $name }</b>
smm-confirm-link = 🔗 { $link }
smm-confirm-quantity = 🔢 Quantity: { $quantity }
smm-confirm-comments = 💬 Comments: { $count }
smm-confirm-dripfeed = 💧 Drip-feed: { $runs } { $runs ->
        [one] run
       *[other] runs
    }, every { $interval } min
smm-dripfeed-quantity = { $quantity } per run × { $runs } { $runs ->
        [one] run
       *[other] runs
    } = { $total }
smm-confirm-answer = 🗳 Answer: { $answer }
smm-confirm-usernames = 👤 Usernames: { $count }
smm-confirm-price = Price: <b>{ $price }</b> ({ $rate })
smm-confirm-balance = Your balance: { $balance } → after the order: <b>{ $after }</b>
smm-not-enough =
    Your balance: { $balance }. You need <b>{ $missing }</b> more.
    To top up, contact the shop's support.
smm-button-confirm = ✅ Order for { $price }
smm-price-changed = The price has changed to { $price }. Please check and confirm again.
smm-placing = ⏳ Placing your order…
smm-already-placed = This order was already placed.
smm-placed =
    ✅ Order #{ $id } placed: { $name } · { $price }
    🔢 Quantity: { $quantity }
    Status: { $status }. You will get a message when it is done.
smm-placed-failed = 😔 Order #{ $id } ({ $name }) failed: { $reason } { $price } was returned to your balance.
smm-placed-unknown = ⏳ The provider did not answer in time. The shop will check order #{ $id } ({ $name }, { $price }) and either complete it or refund it.
smm-reason-provider-error = the provider refused the order.
smm-reason-bad-link = the provider did not accept the link.
smm-reason-bad-quantity = the provider did not accept the quantity.
smm-reason-link-busy = an order for this link is still running; try again when it is done.
smm-reason-unavailable = the provider is not available right now.
smm-reason-not-sent = the order was not sent to the provider.
smm-reason-lost = the provider lost the order.
smm-status-placing = placing
smm-status-pending = pending
smm-status-in-progress = in progress
smm-status-completed = completed
smm-status-partial = partly delivered
smm-status-cancelled = cancelled
smm-status-failed = failed
smm-status-unknown = being checked by the shop
smm-orders-title = 📋 Your SMM orders (page { $page }/{ $pages }):
smm-orders-empty = 📋 You have no SMM orders yet.
smm-orders-row = #{ $id } · { $name } · { $quantity } · { $price } · <b>{ $status }</b>
smm-orders-progress = start count { $start } · remains { $remains }
smm-orders-refunded = returned { $amount }
smm-orders-cancel-requested = cancellation requested
smm-orders-refill = ♻️ refill: { $status }
smm-refill-status-pending = pending
smm-refill-status-in-progress = in progress
smm-refill-status-completed = completed
smm-refill-status-rejected = rejected
smm-refill-status-partial = partly done
smm-refill-status-failed = failed
smm-refill-status-not-found = no longer known to the provider
smm-refill-status-other = ended (the provider says “{ $word }”)
smm-button-refill = ♻️ Refill #{ $id }
smm-button-cancel-order = 🚫 Cancel order #{ $id }
smm-button-refresh = 🔄 Refresh
smm-refill-requested = ♻️ Refill requested. Its status is shown in your orders.
smm-cancel-requested = 🚫 Cancellation requested. The money comes back once the provider confirms it.
smm-not-found = This order was not found.
smm-not-offered = This service does not offer that.
smm-wrong-state = This order can no longer do that.
smm-refill-running = A refill of this order is already running.
smm-refused = The provider refused. Nothing changed.
smm-try-later = The provider is not answering. Nothing changed; please try again in a minute.
smm-closed-completed = ✅ Your SMM order #{ $id } ({ $name }) is completed.
smm-closed-partial = ⚠️ Your SMM order #{ $id } ({ $name }) was delivered partly: { $remains } of { $quantity } { $remains ->
        [one] was
       *[other] were
    } not delivered. { $refund } was returned to your balance.
smm-closed-cancelled = ❌ Your SMM order #{ $id } ({ $name }) was cancelled. { $refund } was returned to your balance.
smm-closed-failed = 😔 Your SMM order #{ $id } ({ $name }) could not be placed. { $refund } was returned to your balance.

# Broadcasts (admins)
command-broadcast = Admin: send a message to every user
command-broadcast_cancel = Admin: stop the running broadcast
broadcast-usage =
    Usage: /broadcast &lt;text&gt;, or reply to a text message with /broadcast.
    It goes to every user who has not blocked the bot, about 25 messages a second.
broadcast-busy = 📣 Broadcast #{ $id } is still running. Wait for it to finish, or stop it with /broadcast_cancel.
broadcast-progress-running = 📣 Broadcast #{ $id }: { $done }/{ $total } ({ $percent }%)
broadcast-progress-done = ✅ Broadcast #{ $id } finished: { $done }/{ $total } ({ $percent }%)
broadcast-progress-cancelled = ⛔ Broadcast #{ $id } cancelled at { $done }/{ $total } ({ $percent }%)
broadcast-progress-counts = { $sent } sent, { $blocked } blocked, { $failed } failed
broadcast-button-cancel = ⛔ Cancel the broadcast
broadcast-cancelled = ⛔ Broadcast #{ $id } cancelled.
broadcast-not-running = No broadcast is running.
broadcast-cancel-usage = Usage: /broadcast_cancel, or /broadcast_cancel &lt;broadcast number&gt;, e.g. <code>/broadcast_cancel 3</code>

# Admin console
admin-yes = yes
admin-no = no
admin-on = on
admin-off = off
admin-user-usage = Usage: <code>/user &lt;telegram id or @username&gt;</code>
admin-user-card =
    👤 <b>{ $id }</b> { $username }
    Balance: <b>{ $balance }</b> · language { $language } · banned: { $banned } · blocked the bot: { $blocked }
admin-user-orders = <b>Last orders</b>
admin-user-ledger = <b>Last operations</b>
admin-user-payments = <b>Top-ups paid in the bot</b>
admin-user-ledger-admin = by admin { $admin }
admin-user-ledger-comment = 💬 { $comment }
admin-ban-usage = Usage: <code>/ban &lt;user&gt;</code> or <code>/unban &lt;user&gt;</code>
admin-banned = ⛔ User { $user } is banned: no new purchases; open orders still finish and refund.
admin-unbanned = ✅ User { $user } is unbanned.
admin-refund-usage = Usage: <code>/refund &lt;order&gt; [reason]</code>, order like <code>otp:12</code>, <code>smm:7</code> or <code>12</code>
admin-refund-busy = ⏳ { $order } is being bought from the provider right now: nothing was refunded. Try again in a minute, once its outcome is known.
admin-order-not-found = Order { $order } not found.
admin-already-refunded = Order { $order } was already refunded: nothing changed.
admin-refunded = ✅ Refunded { $amount } for { $order } to user { $user }.
admin-stats-usage = Usage: <code>/stats [today | 7d | 30d]</code>
admin-stats-title = 📊 <b>Stats, { $period }</b> (since { $since } UTC)
admin-stats-otp = Numbers: { $statuses }
admin-stats-smm = SMM: { $statuses }
admin-stats-money = Revenue { $revenue } · upstream cost { $cost } · profit <b>{ $profit }</b> · refunds { $refunds }
admin-stats-users = New users: { $count }
admin-stats-topups = Top-ups: { $methods }
admin-stats-top = <b>Top services</b>
admin-stats-provider = { $provider }: { $orders } { $orders ->
        [one] order
       *[other] orders
    } · revenue { $revenue } · cost { $cost }
admin-providers-title = 🔌 <b>Providers</b> (health over the last hour)
admin-provider-row = <b>{ $name }</b> ({ $kind }) · { $enabled } · balance { $balance } · { $requests } { $requests ->
        [one] request
       *[other] requests
    }, { $errors } { $errors ->
        [one] error
       *[other] errors
    } ({ $rate }) · last error: { $last }
admin-provider-usage = Usage: <code>/provider &lt;name&gt; on|off</code>. Providers: { $names }
admin-provider-set = Provider { $name } is now { $state }.
admin-markup-title = 💹 <b>Markups</b>: default { $default }% (.env { $env }%)
admin-markup-provider = { $name }: { $percent }%
admin-markup-usage =
    Set: <code>/markup global 25</code> · <code>/markup provider &lt;name&gt; 30</code> · <code>/markup otp &lt;ISO&gt; &lt;service&gt; 15</code> · <code>/markup smm &lt;provider&gt; &lt;service id&gt; 40</code>
    Use <code>reset</code> instead of a number to remove a setting.
admin-markup-set = ✅ Markup { $what }: { $value }. Prices are updated.
admin-markup-reset = back to the default
refund-by-shop = 💰 The shop refunded <b>{ $amount }</b> to your balance.

# Notification group
notify-new-user = 👤 New customer: { $user } { $username }
notify-purchase = 🛒 { $user } bought { $what }: price { $price } · cost { $cost } · profit { $profit } · provider { $provider }
notify-what-otp = a 📱 { $service } number ({ $flag } { $country })
notify-what-smm = 📈 { $name } × { $quantity }
notify-code = 🔑 Code delivered: { $order } ({ $provider })
notify-refund = ↩️ Refund { $amount } to { $user } for { $order }: { $reason }
notify-reason-user_cancel = cancelled by the customer
notify-reason-timeout = no SMS before the deadline
notify-reason-upstream_cancelled = cancelled by the provider
notify-reason-no_numbers = the provider had no numbers
notify-reason-provider_error = the provider refused the order
notify-reason-no_upstream_order = the provider issued no number
notify-reason-bad_link = the provider did not accept the link
notify-reason-bad_quantity = the provider did not accept the quantity
notify-reason-link_busy = another order for this link was still running
notify-reason-unavailable = the provider was unavailable
notify-reason-not_sent = the order never reached the provider
notify-reason-lost = the provider lost the order
notify-reason-partial = delivered in part, the rest refunded
notify-reason-cancelled = cancelled at the provider
notify-reason-expired = the number expired
notify-reason-failed = the order failed
notify-reason-admin = refunded by an admin
notify-reason-admin-note = refunded by an admin: { $note }
notify-topup = 💰 { $direction }: { $amount }, customer { $user }, by { $admin }
notify-direction-topup = Balance top-up
notify-direction-deduct = Balance deduction
notify-provider-errors = ⚠️ Provider { $provider }: { $errors } { $errors ->
        [one] error
       *[other] errors
    } in { $requests } { $requests ->
        [one] request
       *[other] requests
    } in the last 5 minutes. Last: { $last }
notify-provider-balance = 🪫 Provider { $provider } balance is low: { $balance } (alert below { $threshold })
notify-refill-unknown = ♻️ Refill of order { $order } at { $provider }: the panel answers “{ $word }”, a status the bot does not know. It is taken as ended, so the customer can ask for a refill again; check it in the panel.
notify-unknown-order = ❓ Order { $order } at { $provider } needs a human. { $tried ->
        [no-list] The buy request got no answer, and this provider has no order list the bot could search.
        [list-unavailable] The buy request got no answer, and the provider's order list could not be read since then.
        [smm-no-answer] The order request got no answer; SMM panels have no order list, and the bot never sends an order twice.
        [smm-trouble] The panel has not shown the order properly since { $since }: { $detail ->
            [not-found] it says there is no such order.
            [partial-no-remains] it reports Partial without saying how much was not delivered, so the bot cannot work out the refund.
           *[other] it reports the status “{ $word }”, which the bot does not know.
        }
       *[other] { $detail } { $word }
    } Look it up in the provider's dashboard: if it is there, send /adopt { $order } followed by the provider's order id; if not, /refund { $order }.
command-user = Admin: a user's card
command-stats = Admin: sales figures
command-providers = Admin: providers' balance and health
command-provider = Admin: switch a provider on or off
command-markup = Admin: markups
command-ban = Admin: ban a user
command-unban = Admin: unban a user
command-refund = Admin: refund an order
admin-adopt-usage = Usage: <code>/adopt &lt;otp:12 | smm:7&gt; &lt;provider's order id&gt; [phone]</code> for an order whose outcome is unknown but which exists at the provider (otherwise /refund it).
admin-adopt-not-unknown = Order { $order } is not waiting for a decision.
admin-adopted = ✅ Order { $order } now follows the provider's order { $upstream }.
command-adopt = Admin: take over an unknown order found upstream

# Top-ups by the customer (handlers/payments.py)
topup-button = 💳 Top up
topup-button-amount = 💳 Top up { $amount }
topup-none = To top up your balance, contact { $support }.
topup-choose-amount = 💳 How much would you like to add? From { $min } to { $max }.
topup-custom = ✏️ Other amount
topup-custom-prompt = ✏️ Type the amount to add, from { $min } to { $max } (for example 12.50):
topup-custom-invalid = That is not an amount. Type a number such as 12.50.
topup-custom-range = The amount must be from { $min } to { $max }.
topup-out-of-range = This amount cannot be paid this way.
topup-choose-method = 💳 Top up by <b>{ $amount }</b>. How would you like to pay?
topup-stars-button = ⭐ Telegram Stars · { $stars } ⭐
topup-invoice-title = Balance top-up
topup-invoice-description = { $amount } to your wallet in the shop.
topup-invoice-label = Top-up
topup-refused-disabled = Payments with Telegram Stars are turned off. Nothing was charged.
topup-refused-banned = Your account cannot make payments. Nothing was charged.
topup-refused-range = This amount is outside the allowed range. Nothing was charged.
topup-refused-unknown = This invoice is no longer valid. Please start a new top-up.
topup-paid = ✅ Payment received: <b>{ $amount }</b> added to your wallet. Balance: <b>{ $balance }</b>
reason-stars_refund = Telegram Stars refund
reason-stars_refund_failed = Stars refund given back
command-refund_stars = Admin: refund a Telegram Stars payment
admin-refund-stars-usage = Usage: <code>/refund_stars &lt;telegram_payment_charge_id&gt;</code>
admin-refund-stars-not-found = No Stars payment with the charge id <code>{ $charge }</code>.
admin-refund-stars-already = The Stars payment <code>{ $charge }</code> was refunded already.
admin-refund-stars-insufficient = ❌ The customer's balance is only <b>{ $balance }</b>: it no longer covers the payment, so nothing was refunded.
admin-refund-stars-refused = ❌ Telegram refused the refund ({ $error }). The money was given back to the customer's wallet.
admin-refund-stars-done = ✅ Refunded { $stars } ⭐ ({ $amount }) to <code>{ $user }</code>. Their balance: <b>{ $balance }</b>
notify-payment = 💳 { $user } topped up { $amount } with { $method }
notify-stars-refund = ↩️ Stars refund: { $stars } ⭐ ({ $amount }) to { $user }, by { $admin }
topup-crypto-button = 💎 Crypto (@CryptoBot)
topup-crypto-invoice = 💎 An invoice for <b>{ $amount }</b> is ready in @CryptoBot. Pay it there; your balance is topped up as soon as the payment arrives.
topup-crypto-pay = 💎 Pay { $amount }
topup-crypto-unavailable = Crypto payments are not available right now. Please try again later.
command-payments = Admin: recent top-ups, with Check now
admin-payments-title = 💳 <b>Recent top-ups</b>
admin-payments-row = #{ $id } · { $date } · <code>{ $user }</code> · { $method } · { $amount } · { $status } · <code>{ $external }</code>
admin-payments-empty = No top-ups yet.
admin-payments-check = 🔄 Check #{ $id }
admin-payments-checked = Top-up #{ $id }: { $status }
admin-payments-check-failed = The payment system did not answer. Try again later.
payment-method-stars = Telegram Stars
payment-method-cryptopay = Crypto Pay
payment-method-other = other
payment-method-admin = by admins
payment-status-pending = waiting for payment
payment-status-paid = paid
payment-status-expired = expired
payment-status-refunding = being refunded
payment-status-refunded = refunded
payment-status-other = unknown

# Reseller API (handlers/api_keys.py, handlers/admin_api.py)
menu-api = 🔑 API
command-api = Admin: turn a user's reseller API on or off
api-title = 🔑 <b>API for resellers</b>
    Buy numbers from your own scripts or bot, with any client of the SMS-Activate API. Orders are paid from this balance and appear in your history.
api-off = The API is turned off for your account. Contact support if you need it.
api-off-error = The API is turned off for your account.
api-no-key = You have no API key yet.
api-key-info = Your key was created on { $created } · last used: { $used }
api-push-on = 🔔 Codes of API orders are also sent to this chat.
api-push-off = 🔕 Codes of API orders are not sent to this chat.
api-urls = SMS-Activate-compatible API:
    <code>{ $handler_api }</code>
    Toolvico API (X-API-Key header):
    <code>{ $toolvico }</code>
    SMM panel API v2:
    <code>{ $smm_v2 }</code>
api-key-new = 🔑 Your new API key (shown only this once: copy it now):
    <code>{ $key }</code>
api-button-create = 🔑 Create a key
api-button-roll = 🔄 New key
api-button-delete = 🗑 Delete key
api-button-push-on = 🔔 Codes to this chat: on
api-button-push-off = 🔕 Codes to this chat: off
api-button-roll-confirm = 🔄 Yes, make a new key
api-button-delete-confirm = 🗑 Yes, delete the key
api-roll-ask = Make a new key? The current one stops working at once.
api-delete-ask = Delete your key? Scripts using it stop working at once.
api-deleted = Key deleted.
admin-api-usage = Usage: <code>/api &lt;user&gt; on|off</code>
admin-api-on = ✅ The API is on for user { $user }.
admin-api-off = ⛔ The API is off for user { $user }; their key stops working at once.

## Maintenance mode and exports (handlers/admin_shop.py)
command-maintenance = Admin: close or reopen the shop for new purchases
command-export = Admin: a CSV of the ledger, orders or payments
maintenance-default = 🛠 The shop is closed for maintenance for a short while. Your open orders go on as usual; new purchases will be back soon.
admin-maintenance-usage = Usage: <code>/maintenance on [text]</code>, <code>/maintenance off</code>, or <code>/maintenance</code> to see the state.
admin-maintenance-on = 🛠 Maintenance is on. Customers get this instead of new purchases:
    { $text }
admin-maintenance-off = ✅ Maintenance is off: the shop is open again.
admin-maintenance-is-on = 🛠 Maintenance is on. Customers get:
    { $text }
admin-maintenance-is-off = The shop is open (maintenance is off).
admin-export-usage = Usage: <code>/export ledger|orders|payments [from] [to]</code>, dates as YYYY-MM-DD in UTC, both days included.
admin-export-done = { $kind }: { $rows } rows
admin-export-failed = ❌ Telegram did not take the file. Try a shorter period.
admin-export-interrupted = ⏸ The bot is restarting: the export was stopped. Send the command again in a minute.
notify-backup-failed = 🛑 The scheduled backup failed: { $error }
proof-line = { $flag } { $service } · { $phone } · code in { $seconds } s
command-forget = Erase the numbers and codes of your finished orders
forget-ask = 🗑 Erase the phone numbers, SMS texts and codes of your finished orders? Your balance, payments and the list of what you bought stay. Open orders are not touched. This cannot be undone.
forget-button = 🗑 Erase them
forget-done = 🗑 Done: { $count ->
        [one] { $count } order was
       *[other] { $count } orders were
    } erased.
history-erased = erased

## Catalog controls (handlers/admin_catalog.py)
command-catalog = Admin: what is hidden, priced by hand or renamed
command-hide = Admin: hide a country, service or item from customers
command-show = Admin: show a hidden item again
command-price = Admin: a fixed price for an item instead of the markup
command-minprofit = Admin: the least profit a sale may make
command-rename = Admin: rename a service or category as customers see it
command-rate = Admin: a provider's exchange rate, over .env
admin-hide-usage =
    Usage: <code>/hide country &lt;ISO&gt;</code> · <code>/hide service &lt;service&gt;</code> · <code>/hide otp &lt;ISO&gt; &lt;service&gt;</code> · <code>/hide smm &lt;provider&gt; &lt;service id&gt;</code> · <code>/hide category &lt;name&gt;</code>
    <code>/show</code> with the same words shows it again.
admin-hidden = 🙈 Hidden: { $what }. Customers no longer see or buy it.
admin-shown = 👁 Shown again: { $what }.
admin-price-usage =
    Usage: <code>/price otp &lt;ISO&gt; &lt;service&gt; 0.50</code> (one number) · <code>/price smm &lt;provider&gt; &lt;service id&gt; 1.20</code> (per 1000; a package: the package)
    Use <code>reset</code> instead of the amount to go back to the markup.
admin-price-set = ✅ Fixed price { $what }: { $value }. Prices are updated.
admin-minprofit-usage =
    Usage: <code>/minprofit otp 0.05</code> (per number) · <code>/minprofit smm 0.10</code> (per order); <code>0</code> means never below cost, <code>reset</code> removes it.
admin-minprofit-set = ✅ Minimum profit { $what }: { $value }. Prices are updated.
admin-rename-usage =
    Usage: <code>/rename service &lt;service&gt; &lt;new name&gt;</code> · <code>/rename smm &lt;provider&gt; &lt;service id&gt; &lt;new name&gt;</code> · <code>/rename category &lt;name&gt; = &lt;new name&gt;</code>
    Use <code>reset</code> as the new name to show the provider's name again.
admin-rename-set = ✅ { $what } is now shown as: { $value }.
admin-rule-unlisted = ⚠️ No provider lists this now: the rule is kept and applies when one does. Check the spelling with /catalog and the customers' screens.
admin-catalog-title = 🗂 <b>Catalog rules</b>
admin-catalog-hidden = 🙈 Hidden:
admin-catalog-fixed = 🏷 Fixed prices:
admin-catalog-minprofit = 📈 Minimum profit:
admin-catalog-names = ✏️ Names:
admin-catalog-rates = 💱 Rates set by an admin:
admin-catalog-none = Nothing is hidden, priced by hand or renamed.
admin-catalog-usage = Commands: /hide, /show, /price, /minprofit, /rename, /rate
admin-rate-usage = Usage: <code>/rate &lt;provider&gt;</code> shows it · <code>/rate &lt;provider&gt; 0.011</code> sets what one unit of its currency is worth in { $currency } · <code>/rate &lt;provider&gt; reset</code> goes back to .env. Providers: { $names }
admin-rate-show = 💱 { $name }: 1 { $unit } = { $rate } { $currency } ({ $source })
admin-rate-source-env = from .env
admin-rate-source-admin = set by an admin; .env { $env }
admin-rate-set = ✅ Rate of { $name }: 1 { $unit } = { $rate } { $currency }. Prices are updated; a price a customer already confirmed stays as confirmed.
admin-rate-reset = ✅ Rate of { $name } is back to .env: 1 { $unit } = { $rate } { $currency }. Prices are updated.

## Automatic provider switching and the group's buttons (services/auto_switch.py, handlers/group_actions.py)
notify-provider-auto-off = ⛔ Provider { $provider } stopped selling by itself: { $why ->
        [no-balance] it says our balance there is too low. It comes back once a balance check finds money again.
       *[failures] too many of its recent calls failed. It comes back once it answers again.
    } ({ $detail })
notify-provider-auto-on = ✅ Provider { $provider } sells again: { $why ->
        [no-balance] a balance check found money.
       *[failures] it answers again.
    }
admin-off-auto = ⛔ off by itself ({ $why ->
        [no-balance] no balance
       *[failures] failing
    }, since { $since }; /provider … on to force it on)
group-button-refund = 💸 Refund
group-button-adopt = 📥 Adopt
group-button-off = ⛔ Switch off
group-button-show = 📊 Show providers
group-action-admins-only = Only the shop's admins can do this. Nothing was changed.
group-action-unknown = This button no longer does anything.
group-action-gone = { $order } is not there any more.
group-action-busy = { $order } is being bought right now: try again in a minute.
group-action-needs-id = The provider's order id for { $order } is not known. Find the order at the provider and send: /adopt { $order } <order id> [phone]
group-action-what-running = { $verb ->
        [refund] refunding
        [adopt] adopting
       *[off] switching off
    } (in progress)
group-action-what-refunded = refunded { $amount } for { $order }
group-action-what-already-refunded = { $order } was already refunded
group-action-what-adopted = { $order } adopted as provider order { $what }
group-action-what-settled = { $order } was settled already ({ $what })
group-action-what-switched-off = { $provider } switched off
group-action-done = ✅ { $what } — by { $admin }, { $at }
group-action-already = Already done: { $what } — by { $admin }, { $at }
