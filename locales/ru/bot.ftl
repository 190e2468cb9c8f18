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
command-history = Ваши номера
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

# Buying a number
demo-label = 🧪 ДЕМО: номера и коды здесь ненастоящие.
otp-countries-title = 📱 Выберите страну:
otp-countries-empty = 😔 Сейчас ничего нет в продаже. Попробуйте позже.
otp-country-button = { $flag } { $name } · от { $price }
otp-services-title = { $flag } <b>{ $country }</b>: выберите сервис
otp-service-button = { $service } · { $price } · { $stock }
otp-by-service = 🔤 Выбрать по сервису
otp-by-service-title = 🔤 Выберите сервис:
otp-service-name-button = { $service }
otp-service-countries-title = <b>{ $service }</b>: выберите страну (сначала дешевле)
otp-service-country-button = { $flag } { $name } · { $price } · { $stock }
otp-search = 🔎 Поиск
otp-search-prompt = 🔎 Введите часть названия страны (по-русски или по-английски):
otp-search-empty = По запросу «{ $query }» ничего не найдено. Попробуйте другое название.
otp-search-results = 🔎 Страны по запросу «{ $query }»:
otp-confirm =
    <b>{ $service }</b> · { $flag } { $country }
    Цена: <b>{ $price }</b>
    Ваш баланс: { $balance } → после покупки: <b>{ $after }</b>
otp-confirm-button = ✅ Купить за { $price }
otp-not-enough =
    <b>{ $service }</b> · { $flag } { $country }
    Цена: <b>{ $price }</b>
    Ваш баланс: { $balance }. Не хватает <b>{ $missing }</b>.
    Чтобы пополнить баланс, напишите в поддержку магазина.
otp-price-changed = Цена изменилась: { $price }. Проверьте и подтвердите ещё раз.
otp-out-of-stock = 😔 Этот номер уже недоступен. Выберите другой.
otp-too-many = У вас уже { $limit } открытых номеров. Сначала завершите или отмените один из них.
otp-buying = ⏳ Покупаем номер…
otp-already-bought = Эта покупка уже сделана.
button-prev = ◀
button-next = ▶
page-counter = { $page }/{ $pages }

# The activation card
otp-card-number = 📱 <code>{ $phone }</code>
otp-card-what = { $service } · { $flag } { $country } · { $price }
otp-card-waiting = ⏳ Ждём SMS… осталось { $minutes } мин.
otp-card-cancel-hint = Отменить можно с { $time } UTC.
otp-card-code = ✅ Код: <code>{ $code }</code>
otp-card-finished = ✔️ Завершено.
otp-card-cancelled = ❌ Отменено. { $price } возвращено на баланс.
otp-card-expired = ⌛ SMS не пришло вовремя. { $price } возвращено на баланс.
otp-card-failed = 😔 Покупка не удалась: { $reason } { $price } возвращено на баланс.
otp-card-unknown = ⏳ Поставщик не ответил вовремя. Мы проверяем заказ; если номер не был выдан, деньги вернутся на баланс.
otp-card-buying = ⏳ Покупаем номер…
otp-button-cancel = ❌ Отменить
otp-button-finish = ✔️ Завершить
otp-button-another = 📨 Ещё SMS
otp-button-full-sms = 📄 Полный текст SMS
otp-button-refresh = 🔄 Обновить
otp-reason-no_numbers = сейчас нет свободных номеров.
otp-reason-provider_error = поставщик отклонил заказ.
otp-reason-no_upstream_order = поставщик не выдал номер.
otp-reason-other = заказ не удалось выполнить.
otp-cancel-too-early = Отменить можно через { $seconds } с (поставщики не принимают более раннюю отмену).
otp-try-later = Поставщик не отвечает. Ничего не изменилось; попробуйте через минуту.
otp-wrong-state = С этим номером это уже невозможно.
otp-not-found = Заказ не найден.
otp-another-requested = 📨 Запрошено ещё одно SMS. Новый код появится здесь.
otp-full-sms = 📄 { $text }
otp-no-full-sms = Поставщик не прислал полный текст этого SMS.

# Messages pushed into the chat
otp-code-message = 🔑 Код <b>{ $service }</b> для <code>{ $phone }</code>: <code>{ $code }</code>
otp-closed-cancelled = ❌ Заказ { $service } (<code>{ $phone }</code>) отменён поставщиком. { $price } возвращено на баланс.
otp-closed-expired = ⌛ SMS для { $service } (<code>{ $phone }</code>) не пришло. Номер отменён, { $price } возвращено на баланс.
otp-closed-failed = 😔 Покупка { $service } не удалась: поставщик не выдал номер. { $price } возвращено на баланс.

# History
history-title = 🧾 Ваши номера (страница { $page }/{ $pages }):
history-empty = 🧾 У вас пока нет номеров.
history-row = #{ $id } · { $date } · { $service } · { $flag } · { $phone } · { $price } · { $status }{ $code }
history-code = {" "}· код { $code }
history-open = Открыть #{ $id }
status-buying = покупка
status-unknown = проверяем
status-waiting = ожидание
status-received = код получен
status-finished = завершён
status-cancelled = отменён, возврат
status-expired = истёк, возврат
status-failed = не удался, возврат
