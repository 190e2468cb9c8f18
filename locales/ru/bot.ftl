# Main menu
welcome =
    👋 Здравствуйте, { $name }!

    Покупайте виртуальные номера для SMS-кодов и заказывайте SMM-услуги с оплатой из кошелька.
    💰 Баланс: <b>{ $balance }</b>
menu-title = Главное меню · 💰 <b>{ $balance }</b>
menu-buy = 📱 Купить номер
menu-smm = 📈 SMM-услуги
menu-balance = 💰 Баланс
menu-history = 🧾 История
menu-language = 🌐 Язык
menu-help = ❓ Помощь
button-back = « Назад
button-menu = « Главное меню
coming-soon = 🚧 Этот раздел магазина скоро появится.

# Balance
balance-title = 💰 Ваш баланс: <b>{ $balance }</b>
balance-history-title = Последние операции:
balance-history-empty = Операций пока нет.
balance-row = { $date } · <b>{ $delta }</b> · { $reason }
balance-topup-hint = Чтобы пополнить баланс, напишите в поддержку магазина.
reason-topup = пополнение
reason-deduct = корректировка магазином
reason-purchase = покупка
reason-refund = возврат
reason-other = { $reason }

# Language
language-choose = 🌐 Выберите язык:
language-set = ✅ Язык: русский
language-name-en = 🇬🇧 English
language-name-ru = 🇷🇺 Русский

# Help
help-text =
    <b>Как это работает</b>
    1. Пополните кошелёк.
    2. Выберите страну и сервис и купите номер.
    3. Код сам придёт в этот чат.

    Если код не пришёл, номер отменяется, а деньги возвращаются в кошелёк.

# Notices
banned-notice = ⛔ Ваш аккаунт ограничен. Вы можете просматривать и закрывать свои заказы.
throttled-notice = ⏳ Слишком много запросов, пожалуйста, помедленнее.
error-unexpected = 😔 Извините, что-то пошло не так. Попробуйте ещё раз.
unknown-command = 🤷 Неизвестная команда. Отправьте /start, чтобы открыть меню.
unknown-text = Пользуйтесь кнопками ниже или отправьте /start, чтобы открыть меню.
callback-stale = Эта кнопка устарела. Отправьте /start, чтобы открыть меню.

# Wallet notices sent to the user
topup-received = 💰 Ваш кошелёк пополнен на <b>{ $amount }</b>. Баланс: <b>{ $balance }</b>
deduct-received = 💰 Магазин списал с вашего кошелька <b>{ $amount }</b>. Баланс: <b>{ $balance }</b>

# Bot commands (the menu button)
command-start = Открыть главное меню
command-balance = Ваш баланс
command-help = Как это работает
command-language = Сменить язык
command-topup = Админ: пополнить кошелёк
command-deduct = Админ: списать с кошелька
command-audit = Админ: сверить балансы с журналом

# Admin
admin-topup-usage =
    Формат: <code>/topup &lt;telegram id или @username&gt; &lt;сумма&gt; [комментарий]</code>
    Сумма: положительное число, не больше 6 знаков после точки, например <code>12.50</code>
admin-deduct-usage =
    Формат: <code>/deduct &lt;telegram id или @username&gt; &lt;сумма&gt; [комментарий]</code>
    Сумма: положительное число, не больше 6 знаков после точки, например <code>12.50</code>
admin-user-not-found = Пользователь { $query } не найден. Он должен сначала запустить бота.
admin-topup-done = ✅ { $user } пополнен на <b>{ $amount }</b>. Новый баланс: <b>{ $balance }</b>
admin-deduct-done = ✅ С { $user } списано <b>{ $amount }</b>. Новый баланс: <b>{ $balance }</b>
admin-deduct-insufficient-error = ❌ У { $user } только <b>{ $balance }</b>: ничего не списано.
admin-duplicate = Эта команда уже выполнена.
admin-audit-ok = ✅ Сверка: проверено пользователей: { $users }, все балансы совпадают с журналом.
admin-audit-mismatch = ❌ Сверка: проверено пользователей: { $users }, расхождений: { $count }:
admin-audit-row = пользователь { $user }: баланс { $balance }, журнал { $ledger }
