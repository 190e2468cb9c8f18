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
