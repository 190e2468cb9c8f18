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
    1. Пополните кошелёк (через поддержку, контакт ниже).
    2. 📱 Выберите страну и сервис и купите номер. Код сам придёт в этот чат.
    3. 📈 Или закажите SMM-услугу: выберите услугу, пришлите ссылку и количество.

    <b>Возвраты</b>
    • Код не пришёл до конца срока номера: номер отменяется, вся сумма возвращается в кошелёк.
    • Отменить номер самому можно через { $delay } мин, пока код не пришёл: полный возврат.
    • Если код пришёл, номер использован и не возвращается.
    • SMM-заказы, отменённые поставщиком, возвращаются полностью; выполненные частично — пропорционально недоставленному.

    Поддержка: { $support }

help-no-support = администраторы магазина
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
admin-user-ambiguous = { $query } — это несколько пользователей: { $ids }. Укажите id.
admin-topup-done = ✅ { $user } пополнен на <b>{ $amount }</b>. Новый баланс: <b>{ $balance }</b>
admin-deduct-done = ✅ С { $user } списано <b>{ $amount }</b>. Новый баланс: <b>{ $balance }</b>
admin-deduct-insufficient-error = ❌ У { $user } только <b>{ $balance }</b>: ничего не списано.
admin-duplicate = Эта команда уже выполнена.
admin-audit-ok = ✅ Сверка: все балансы совпадают с журналом ({ $users } { $users ->
        [one] пользователь
        [few] пользователя
        [many] пользователей
       *[other] пользователя
    }).
admin-audit-mismatch = ❌ Сверка ({ $users } { $users ->
        [one] пользователь
        [few] пользователя
        [many] пользователей
       *[other] пользователя
    }): { $count } { $count ->
        [one] расхождение
        [few] расхождения
        [many] расхождений
       *[other] расхождения
    }:
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
otp-confirm-again = Проверьте цену и подтвердите покупку ещё раз.
otp-out-of-stock = 😔 Этот номер уже недоступен. Выберите другой.
otp-too-many = У вас уже { $limit } { $limit ->
        [one] открытый номер
        [few] открытых номера
        [many] открытых номеров
       *[other] открытого номера
    }. Сначала завершите или отмените один из них.
otp-too-many-cancels = За последние сутки вы отменили { $limit } { $limit ->
        [one] номер
        [few] номера
       *[other] номеров
    } без кода. Снова покупать можно через { $wait } (в { $time } UTC).
otp-buying = ⏳ Покупаем номер…
otp-already-bought = Эта покупка уже сделана.
button-prev = ◀
button-next = ▶
page-counter = { $page }/{ $pages }

# The activation card
otp-card-number = 📱 <code>{ $phone }</code>
otp-card-what = { $service } · { $flag } { $country } · { $price }
otp-card-waiting = ⏳ Ждём SMS… осталось { $minutes } мин.
otp-card-cancel-hint = ⏱ Отменить можно через { $time }.
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
otp-cancel-too-early = Отменить можно через { $time }. Поставщики не принимают более раннюю отмену.
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

# SMM services
smm-demo-label = 🧪 ДЕМО: SMM-заказы здесь ненастоящие, ничего не выполняется.
smm-categories-title = 📈 SMM-услуги: выберите категорию
smm-categories-empty = 😔 Сейчас SMM-услуг нет в продаже. Попробуйте позже.
smm-category-button = { $name } · { $count }
smm-category-other = Другое
smm-my-orders = 📋 Мои SMM-заказы
smm-services-title = <b>{ $category }</b>: выберите услугу
smm-service-button = { $name } · { $price }
smm-rate-per-1000 = { $price } / 1000
smm-rate-per-package = { $price } / пакет
smm-card-title =
    <b>{ $name }</b>
    { $category }
smm-card-price = 💵 Цена: <b>{ $price }</b>
smm-card-range = 🔢 Количество: от { $min } до { $max }
smm-card-refill-yes = ♻️ Докрутка (refill): есть
smm-card-refill-no = ♻️ Докрутка (refill): нет
smm-card-cancel-yes = 🚫 Отмена заказа: можно, пока он выполняется
smm-card-cancel-no = 🚫 Отмена заказа: нельзя
smm-card-dripfeed = 💧 Drip-feed: есть (выполнение в несколько заходов)
smm-button-order = 🛒 Заказать
smm-button-close-form = ✖️ Закрыть форму
smm-form-cancelled = ✖️ Форма закрыта: ничего не заказано и не списано.
smm-form-closed = Эта форма уже закрыта. Ваши заказы и их статус — в «📋 Мои SMM-заказы».
smm-service-gone = 😔 Эта услуга больше недоступна. Выберите другую.
smm-ask-link =
    <b>{ $name }</b>
    🔗 Пришлите ссылку (начинается с https://) на страницу, пост или профиль для продвижения.
smm-ask-quantity =
    <b>{ $name }</b>
    🔢 Пришлите количество: целое число от { $min } до { $max }.
    Цена: { $price }
smm-ask-comments =
    <b>{ $name }</b>
    💬 Пришлите комментарии, по одному в строке: от { $min } до { $max } { $max ->
        [one] строки
        [few] строк
        [many] строк
       *[other] строки
    }. Количество равно числу строк.
smm-ask-answer =
    <b>{ $name }</b>
    🗳 Пришлите номер варианта ответа в опросе (1 — первый вариант).
smm-ask-usernames =
    <b>{ $name }</b>
    👤 Пришлите имена пользователей для упоминания через пробел или с новой строки (например, @name1 @name2).
smm-ask-runs =
    <b>{ $name }</b>
    💧 Drip-feed выполняет всё количество в каждом заходе: вы получаете и оплачиваете { $quantity } × число заходов.
    🔢 Например: { $example }, цена { $price }.
    Пришлите число заходов (от { $min } до { $max }) или закажите { $quantity } один раз, без drip-feed.
smm-ask-interval =
    <b>{ $name }</b>
    ⏱ Пришлите интервал между заходами в минутах (от { $min } до { $max }).
smm-button-no-dripfeed = ➡️ Без drip-feed, всё сразу
smm-link-empty-error = ❌ Ссылка пустая.
smm-link-too-long-error = ❌ Ссылка слишком длинная: не больше { $max } { $max ->
        [one] символа
        [few] символов
        [many] символов
       *[other] символа
    }.
smm-link-not-url-error = ❌ Это не ссылка. Она должна начинаться с http:// или https://, например https://instagram.com/p/abc
smm-quantity-not-number-error = ❌ Количество должно быть целым числом от { $min } до { $max }.
smm-quantity-range-error = ❌ Количество должно быть от { $min } до { $max }.
smm-comments-empty-error = ❌ Пришлите хотя бы один комментарий, по одному в строке (от { $min } до { $max }).
smm-comments-count-error = ❌ Вы прислали { $count } { $count ->
        [one] комментарий
        [few] комментария
        [many] комментариев
       *[other] комментария
    }; эта услуга принимает от { $min } до { $max }, по одному в строке.
smm-comment-too-long-error = ❌ Комментарий слишком длинный: не больше { $max } { $max ->
        [one] символа
        [few] символов
        [many] символов
       *[other] символа
    }.
smm-answer-range-error = ❌ Пришлите номер ответа: целое число от 1 до { $max }.
smm-usernames-error = ❌ Пришлите имена пользователей (буквы, цифры, _ и .) через пробел или с новой строки.
smm-runs-range-error = ❌ Число заходов должно быть от { $min } до { $max }.
smm-interval-range-error = ❌ Интервал должен быть от { $min } до { $max } { $max ->
        [one] минуты
        [few] минут
        [many] минут
       *[other] минуты
    }.
smm-dripfeed-off-error = ❌ У этой услуги нет drip-feed.
smm-input-error = ❌ Такое значение нельзя заказать. Проверьте его.
smm-confirm-title = <b>{ $name }</b>
smm-confirm-link = 🔗 { $link }
smm-confirm-quantity = 🔢 Количество: { $quantity }
smm-confirm-comments = 💬 Комментариев: { $count }
smm-confirm-dripfeed = 💧 Drip-feed: { $runs } { $runs ->
        [one] заход
        [few] захода
        [many] заходов
       *[other] захода
    }, интервал { $interval } мин
smm-dripfeed-quantity = { $quantity } за заход × { $runs } { $runs ->
        [one] заход
        [few] захода
        [many] заходов
       *[other] захода
    } = { $total }
smm-confirm-answer = 🗳 Ответ: { $answer }
smm-confirm-usernames = 👤 Имён пользователей: { $count }
smm-confirm-price = Цена: <b>{ $price }</b> ({ $rate })
smm-confirm-balance = Ваш баланс: { $balance } → после заказа: <b>{ $after }</b>
smm-not-enough =
    Ваш баланс: { $balance }. Не хватает <b>{ $missing }</b>.
    Чтобы пополнить баланс, напишите в поддержку магазина.
smm-button-confirm = ✅ Заказать за { $price }
smm-price-changed = Цена изменилась: { $price }. Проверьте и подтвердите ещё раз.
smm-placing = ⏳ Оформляем заказ…
smm-already-placed = Этот заказ уже оформлен.
smm-placed =
    ✅ Заказ #{ $id } оформлен: { $name } · { $price }
    🔢 Количество: { $quantity }
    Статус: { $status }. Когда он выполнится, придёт сообщение.
smm-placed-failed = 😔 Заказ #{ $id } ({ $name }) не удался: { $reason } { $price } возвращено на баланс.
smm-placed-unknown = ⏳ Поставщик не ответил вовремя. Магазин проверит заказ #{ $id } ({ $name }, { $price }) и либо выполнит его, либо вернёт деньги.
smm-reason-provider-error = поставщик отказал в заказе.
smm-reason-bad-link = поставщик не принял ссылку.
smm-reason-bad-quantity = поставщик не принял количество.
smm-reason-link-busy = по этой ссылке ещё выполняется заказ; попробуйте, когда он завершится.
smm-reason-unavailable = поставщик сейчас недоступен.
smm-reason-not-sent = заказ не был отправлен поставщику.
smm-reason-lost = поставщик потерял заказ.
smm-status-placing = оформляется
smm-status-pending = в очереди
smm-status-in-progress = выполняется
smm-status-completed = выполнен
smm-status-partial = выполнен частично
smm-status-cancelled = отменён
smm-status-failed = не удался
smm-status-unknown = проверяется магазином
smm-orders-title = 📋 Ваши SMM-заказы (страница { $page }/{ $pages }):
smm-orders-empty = 📋 У вас пока нет SMM-заказов.
smm-orders-row = #{ $id } · { $name } · { $quantity } · { $price } · <b>{ $status }</b>
smm-orders-progress = начальный счётчик { $start } · осталось { $remains }
smm-orders-refunded = возвращено { $amount }
smm-orders-cancel-requested = запрошена отмена
smm-orders-refill = ♻️ докрутка: { $status }
smm-refill-status-pending = в очереди
smm-refill-status-in-progress = выполняется
smm-refill-status-completed = выполнена
smm-refill-status-rejected = отклонена
smm-refill-status-partial = выполнено частично
smm-refill-status-failed = не удалось
smm-refill-status-not-found = поставщик больше не знает о нём
smm-refill-status-other = завершено (поставщик пишет «{ $word }»)
smm-button-refill = ♻️ Докрутка #{ $id }
smm-button-cancel-order = 🚫 Отменить заказ #{ $id }
smm-button-refresh = 🔄 Обновить
smm-refill-requested = ♻️ Докрутка запрошена. Её статус виден в ваших заказах.
smm-cancel-requested = 🚫 Отмена запрошена. Деньги вернутся, когда поставщик её подтвердит.
smm-not-found = Заказ не найден.
smm-not-offered = Эта услуга так не умеет.
smm-wrong-state = С этим заказом этого уже нельзя сделать.
smm-refill-running = Докрутка этого заказа уже идёт.
smm-refused = Поставщик отказал. Ничего не изменилось.
smm-try-later = Поставщик не отвечает. Ничего не изменилось; попробуйте через минуту.
smm-closed-completed = ✅ Ваш SMM-заказ #{ $id } ({ $name }) выполнен.
smm-closed-partial = ⚠️ Ваш SMM-заказ #{ $id } ({ $name }) выполнен частично: { $remains } из { $quantity } не доставлено. { $refund } возвращено на баланс.
smm-closed-cancelled = ❌ Ваш SMM-заказ #{ $id } ({ $name }) отменён. { $refund } возвращено на баланс.
smm-closed-failed = 😔 Ваш SMM-заказ #{ $id } ({ $name }) не удалось оформить. { $refund } возвращено на баланс.

# Broadcasts (admins)
command-broadcast = Админ: сообщение всем пользователям
command-broadcast_cancel = Админ: остановить рассылку
broadcast-usage =
    Использование: /broadcast &lt;текст&gt; или ответьте на текстовое сообщение командой /broadcast.
    Сообщение получат все, кто не заблокировал бота, примерно 25 сообщений в секунду.
broadcast-busy = 📣 Рассылка #{ $id } ещё идёт. Дождитесь её окончания или остановите: /broadcast_cancel.
broadcast-progress-running = 📣 Рассылка #{ $id }: { $done }/{ $total } ({ $percent }%)
broadcast-progress-done = ✅ Рассылка #{ $id } завершена: { $done }/{ $total } ({ $percent }%)
broadcast-progress-cancelled = ⛔ Рассылка #{ $id } отменена на { $done }/{ $total } ({ $percent }%)
broadcast-progress-counts = отправлено { $sent }, заблокировали бота { $blocked }, { $failed } { $failed ->
        [one] ошибка
        [few] ошибки
        [many] ошибок
       *[other] ошибки
    }
broadcast-button-cancel = ⛔ Отменить рассылку
broadcast-cancelled = ⛔ Рассылка #{ $id } отменена.
broadcast-not-running = Сейчас нет активной рассылки.
broadcast-cancel-usage = Формат: /broadcast_cancel или /broadcast_cancel &lt;номер рассылки&gt;, например <code>/broadcast_cancel 3</code>

# Admin console
admin-yes = да
admin-no = нет
admin-on = включён
admin-off = выключен
admin-user-usage = Формат: <code>/user &lt;telegram id или @username&gt;</code>
admin-user-card =
    👤 <b>{ $id }</b> { $username }
    Баланс: <b>{ $balance }</b> · язык { $language } · заблокирован: { $banned } · заблокировал бота: { $blocked }
admin-user-orders = <b>Последние заказы</b>
admin-user-ledger = <b>Последние операции</b>
admin-user-payments = <b>Пополнения в боте</b>
admin-user-ledger-admin = админ { $admin }
admin-user-ledger-comment = 💬 { $comment }
admin-ban-usage = Формат: <code>/ban &lt;пользователь&gt;</code> или <code>/unban &lt;пользователь&gt;</code>
admin-banned = ⛔ Пользователь { $user } заблокирован: новых покупок нет, открытые заказы завершатся и вернут деньги.
admin-unbanned = ✅ Пользователь { $user } разблокирован.
admin-refund-usage = Формат: <code>/refund &lt;заказ&gt; [причина]</code>, заказ вида <code>otp:12</code>, <code>smm:7</code> или <code>12</code>
admin-refund-busy = ⏳ { $order } прямо сейчас покупается у поставщика: ничего не возвращено. Повторите через минуту, когда станет известен исход.
admin-order-not-found = Заказ { $order } не найден.
admin-already-refunded = По заказу { $order } деньги уже возвращены: ничего не изменилось.
admin-refunded = ✅ Возвращено { $amount } за { $order } пользователю { $user }.
admin-stats-usage = Формат: <code>/stats [today | 7d | 30d]</code>
admin-stats-title = 📊 <b>Статистика, { $period }</b> (с { $since } UTC)
admin-stats-otp = Номера: { $statuses }
admin-stats-smm = SMM: { $statuses }
admin-stats-money = Выручка { $revenue } · закупка { $cost } · прибыль <b>{ $profit }</b> · возвраты { $refunds }
admin-stats-users = Новых пользователей: { $count }
admin-stats-topups = Пополнения: { $methods }
admin-stats-top = <b>Популярные сервисы</b>
admin-stats-provider = { $provider }: { $orders } { $orders ->
        [one] заказ
        [few] заказа
        [many] заказов
       *[other] заказа
    } · выручка { $revenue } · закупка { $cost }
admin-providers-title = 🔌 <b>Поставщики</b> (состояние за последний час)
admin-provider-row = <b>{ $name }</b> ({ $kind }) · { $enabled } · баланс { $balance } · { $requests } { $requests ->
        [one] запрос
        [few] запроса
        [many] запросов
       *[other] запроса
    }, { $errors } { $errors ->
        [one] ошибка
        [few] ошибки
        [many] ошибок
       *[other] ошибки
    } ({ $rate }) · последняя ошибка: { $last }
admin-provider-usage = Формат: <code>/provider &lt;имя&gt; on|off</code>. Поставщики: { $names }
admin-provider-set = Поставщик { $name } теперь { $state }.
admin-markup-title = 💹 <b>Наценки</b>: по умолчанию { $default }% (.env { $env }%)
admin-markup-provider = { $name }: { $percent }%
admin-markup-usage =
    Задать: <code>/markup global 25</code> · <code>/markup provider &lt;имя&gt; 30</code> · <code>/markup otp &lt;ISO&gt; &lt;сервис&gt; 15</code> · <code>/markup smm &lt;поставщик&gt; &lt;id услуги&gt; 40</code>
    Вместо числа <code>reset</code> удаляет настройку.
admin-markup-set = ✅ Наценка { $what }: { $value }. Цены обновлены.
admin-markup-reset = снова по умолчанию
refund-by-shop = 💰 Магазин вернул на ваш баланс <b>{ $amount }</b>.

# Notification group
notify-new-user = 👤 Новый клиент: { $user } { $username }
notify-purchase = 🛒 Покупка: { $what }, клиент { $user }: цена { $price } · закупка { $cost } · прибыль { $profit } · поставщик { $provider }
notify-what-otp = 📱 номер { $service } ({ $flag } { $country })
notify-what-smm = 📈 { $name } × { $quantity }
notify-code = 🔑 Код доставлен: { $order } ({ $provider })
notify-refund = ↩️ Возврат { $amount } клиенту { $user } за { $order }: { $reason }
notify-reason-user_cancel = отменён клиентом
notify-reason-timeout = SMS не пришло до срока
notify-reason-upstream_cancelled = отменён поставщиком
notify-reason-no_numbers = у поставщика не было номеров
notify-reason-provider_error = поставщик отказал в заказе
notify-reason-no_upstream_order = поставщик не выдал номер
notify-reason-bad_link = поставщик не принял ссылку
notify-reason-bad_quantity = поставщик не принял количество
notify-reason-link_busy = по этой ссылке ещё шёл другой заказ
notify-reason-unavailable = поставщик был недоступен
notify-reason-not_sent = заказ не дошёл до поставщика
notify-reason-lost = поставщик потерял заказ
notify-reason-partial = выполнен частично, остаток возвращён
notify-reason-cancelled = отменён у поставщика
notify-reason-expired = срок номера истёк
notify-reason-failed = заказ не выполнен
notify-reason-admin = вернул админ
notify-reason-admin-note = вернул админ: { $note }
notify-topup = 💰 { $direction }: { $amount }, клиент { $user }, админ { $admin }
notify-direction-topup = Пополнение баланса
notify-direction-deduct = Списание с баланса
notify-provider-errors = ⚠️ Поставщик { $provider }: { $errors } { $errors ->
        [one] ошибка
        [few] ошибки
       *[many] ошибок
    } на { $requests } { $requests ->
        [one] запрос
        [few] запроса
       *[many] запросов
    } за последние 5 минут. Последняя: { $last }
notify-provider-balance = 🪫 У поставщика { $provider } мало денег: { $balance } (порог { $threshold })
notify-refill-unknown = ♻️ Рефилл заказа { $order } у { $provider }: панель отвечает «{ $word }», такого статуса бот не знает. Рефилл считается завершённым, и клиент может запросить его снова; проверьте его в панели.
notify-unknown-order = ❓ Заказ { $order } у { $provider } требует внимания. { $tried ->
        [no-list] На запрос покупки не пришёл ответ, а у этого поставщика нет списка заказов, в котором бот мог бы его найти.
        [list-unavailable] На запрос покупки не пришёл ответ, и с тех пор список заказов поставщика не читается.
        [smm-no-answer] На запрос заказа не пришёл ответ; у SMM-панелей нет списка заказов, а бот никогда не отправляет заказ дважды.
        [smm-trouble] Панель не показывает заказ как следует с { $since }: { $detail ->
            [not-found] она отвечает, что такого заказа нет.
            [partial-no-remains] она сообщает Partial, не говоря, сколько не выполнено, поэтому бот не может рассчитать возврат.
           *[other] она сообщает статус «{ $word }», которого бот не знает.
        }
       *[other] { $detail } { $word }
    } Найдите его в кабинете поставщика: если он есть — отправьте /adopt { $order } и номер заказа у поставщика; если нет — /refund { $order }.
command-user = Админ: карточка пользователя
command-stats = Админ: продажи
command-providers = Админ: баланс и состояние поставщиков
command-provider = Админ: включить или выключить поставщика
command-markup = Админ: наценки
command-ban = Админ: заблокировать пользователя
command-unban = Админ: разблокировать пользователя
command-refund = Админ: вернуть деньги за заказ
admin-adopt-usage = Формат: <code>/adopt &lt;otp:12 | smm:7&gt; &lt;id заказа у поставщика&gt; [телефон]</code> для заказа с неизвестным исходом, который есть у поставщика (иначе — /refund).
admin-adopt-not-unknown = Заказ { $order } не ждёт решения.
admin-adopted = ✅ Заказ { $order } теперь следует за заказом поставщика { $upstream }.
command-adopt = Админ: принять заказ с неизвестным исходом, найденный у поставщика

# Пополнение самим покупателем (handlers/payments.py)
topup-button = 💳 Пополнить
topup-button-amount = 💳 Пополнить на { $amount }
topup-none = Чтобы пополнить баланс, напишите: { $support }.
topup-choose-amount = 💳 На какую сумму пополнить? От { $min } до { $max }.
topup-custom = ✏️ Другая сумма
topup-custom-prompt = ✏️ Введите сумму пополнения, от { $min } до { $max } (например 12.50):
topup-custom-invalid = Это не сумма. Введите число, например 12.50.
topup-custom-range = Сумма должна быть от { $min } до { $max }.
topup-out-of-range = Эту сумму нельзя оплатить этим способом.
topup-choose-method = 💳 Пополнение на <b>{ $amount }</b>. Как будете платить?
topup-stars-button = ⭐ Telegram Stars · { $stars } ⭐
topup-invoice-title = Пополнение баланса
topup-invoice-description = { $amount } на ваш кошелёк в магазине.
topup-invoice-label = Пополнение
topup-refused-disabled = Оплата звёздами Telegram отключена. Деньги не списаны.
topup-refused-banned = Вашей учётной записи платежи недоступны. Деньги не списаны.
topup-refused-range = Сумма вне допустимых пределов. Деньги не списаны.
topup-refused-unknown = Этот счёт больше не действует. Начните пополнение заново.
topup-paid = ✅ Оплата получена: на кошелёк зачислено <b>{ $amount }</b>. Баланс: <b>{ $balance }</b>
reason-stars_refund = возврат звёзд Telegram
reason-stars_refund_failed = возврат звёзд отменён
command-refund_stars = Админ: вернуть оплату звёздами Telegram
admin-refund-stars-usage = Использование: <code>/refund_stars &lt;telegram_payment_charge_id&gt;</code>
admin-refund-stars-not-found = Нет оплаты звёздами с идентификатором <code>{ $charge }</code>.
admin-refund-stars-already = Оплата звёздами <code>{ $charge }</code> уже возвращена.
admin-refund-stars-insufficient = ❌ На балансе покупателя только <b>{ $balance }</b>: этого не хватает на возврат, ничего не возвращено.
admin-refund-stars-refused = ❌ Telegram отказал в возврате ({ $error }). Деньги вернулись на кошелёк покупателя.
admin-refund-stars-done = ✅ Возвращено { $stars } ⭐ ({ $amount }) покупателю <code>{ $user }</code>. Его баланс: <b>{ $balance }</b>
notify-payment = 💳 { $user } пополнил баланс на { $amount } через { $method }
notify-stars-refund = ↩️ Возврат звёзд: { $stars } ⭐ ({ $amount }) покупателю { $user }, выполнил { $admin }
topup-crypto-button = 💎 Криптовалюта (@CryptoBot)
topup-crypto-invoice = 💎 Счёт на <b>{ $amount }</b> готов в @CryptoBot. Оплатите его там; баланс пополнится, как только придёт оплата.
topup-crypto-pay = 💎 Оплатить { $amount }
topup-crypto-unavailable = Оплата криптовалютой сейчас недоступна. Попробуйте позже.
command-payments = Админ: последние пополнения, с проверкой
admin-payments-title = 💳 <b>Последние пополнения</b>
admin-payments-row = #{ $id } · { $date } · <code>{ $user }</code> · { $method } · { $amount } · { $status } · <code>{ $external }</code>
admin-payments-empty = Пополнений пока нет.
admin-payments-check = 🔄 Проверить #{ $id }
admin-payments-checked = Пополнение #{ $id }: { $status }
admin-payments-check-failed = Платёжная система не ответила. Попробуйте позже.
payment-method-stars = Telegram Stars
payment-method-cryptopay = Crypto Pay
payment-method-other = другое
payment-method-admin = админами
payment-status-pending = ждёт оплаты
payment-status-paid = оплачено
payment-status-expired = истекло
payment-status-refunding = возвращается
payment-status-refunded = возвращено
payment-status-other = неизвестно

# Reseller API (handlers/api_keys.py, handlers/admin_api.py)
menu-api = 🔑 API
command-api = Админ: включить или выключить API для пользователя
api-title = 🔑 <b>API для реселлеров</b>
    Покупайте номера из своих скриптов или бота любым клиентом API SMS-Activate. Заказы оплачиваются с этого баланса и видны в истории.
api-off = API для вашего аккаунта выключен. Напишите в поддержку, если он нужен.
api-off-error = API для вашего аккаунта выключен.
api-no-key = У вас ещё нет API-ключа.
api-key-info = Ключ создан { $created } · последнее использование: { $used }
api-push-on = 🔔 Коды заказов через API приходят и в этот чат.
api-push-off = 🔕 Коды заказов через API в этот чат не приходят.
api-urls = API, совместимый с SMS-Activate:
    <code>{ $handler_api }</code>
    API Toolvico (заголовок X-API-Key):
    <code>{ $toolvico }</code>
    API SMM-панели v2:
    <code>{ $smm_v2 }</code>
api-key-new = 🔑 Ваш новый API-ключ (показывается только сейчас, скопируйте его):
    <code>{ $key }</code>
api-button-create = 🔑 Создать ключ
api-button-roll = 🔄 Новый ключ
api-button-delete = 🗑 Удалить ключ
api-button-push-on = 🔔 Коды в этот чат: вкл
api-button-push-off = 🔕 Коды в этот чат: выкл
api-button-roll-confirm = 🔄 Да, новый ключ
api-button-delete-confirm = 🗑 Да, удалить ключ
api-roll-ask = Создать новый ключ? Текущий сразу перестанет работать.
api-delete-ask = Удалить ключ? Скрипты с ним сразу перестанут работать.
api-deleted = Ключ удалён.
admin-api-usage = Использование: <code>/api &lt;пользователь&gt; on|off</code>
admin-api-on = ✅ API для пользователя { $user } включён.
admin-api-off = ⛔ API для пользователя { $user } выключен; его ключ сразу перестал работать.

## Maintenance mode and exports (handlers/admin_shop.py)
command-maintenance = Админ: закрыть или открыть магазин для новых покупок
command-export = Админ: CSV журнала, заказов или платежей
maintenance-default = 🛠 Магазин ненадолго закрыт на обслуживание. Открытые заказы продолжаются как обычно; новые покупки скоро вернутся.
admin-maintenance-usage = Использование: <code>/maintenance on [текст]</code>, <code>/maintenance off</code> или <code>/maintenance</code>, чтобы узнать состояние.
admin-maintenance-on = 🛠 Обслуживание включено. Вместо новых покупок клиенты видят:
    { $text }
admin-maintenance-off = ✅ Обслуживание выключено: магазин снова открыт.
admin-maintenance-is-on = 🛠 Обслуживание включено. Клиенты видят:
    { $text }
admin-maintenance-is-off = Магазин открыт (обслуживание выключено).
admin-export-usage = Использование: <code>/export ledger|orders|payments [с] [по]</code>, даты в формате ГГГГ-ММ-ДД по UTC, оба дня включительно.
admin-export-done = { $kind }: строк { $rows }
admin-export-failed = ❌ Telegram не принял файл. Попробуйте период покороче.
admin-export-interrupted = ⏸ Бот перезапускается: выгрузка остановлена. Отправьте команду ещё раз через минуту.
notify-backup-failed = 🛑 Плановая резервная копия не удалась: { $error }
proof-line = { $flag } { $service } · { $phone } · код за { $seconds } с
command-forget = Стереть номера и коды завершённых заказов
forget-ask = 🗑 Стереть номера телефонов, тексты SMS и коды ваших завершённых заказов? Баланс, платежи и список покупок останутся. Открытые заказы не затрагиваются. Это нельзя отменить.
forget-button = 🗑 Стереть
forget-done = 🗑 Готово: { $count ->
        [one] стёрт { $count } заказ
        [few] стёрто { $count } заказа
       *[other] стёрто { $count } заказов
    }.
history-erased = стёрт

## Catalog controls (handlers/admin_catalog.py)
command-catalog = Админ: что скрыто, с ручной ценой или переименовано
command-hide = Админ: скрыть страну, сервис или товар от покупателей
command-show = Админ: снова показать скрытое
command-price = Админ: фиксированная цена товара вместо наценки
command-minprofit = Админ: минимальная прибыль с продажи
command-rename = Админ: переименовать сервис или категорию для покупателей
command-rate = Админ: курс поставщика поверх .env
admin-hide-usage =
    Формат: <code>/hide country &lt;ISO&gt;</code> · <code>/hide service &lt;сервис&gt;</code> · <code>/hide otp &lt;ISO&gt; &lt;сервис&gt;</code> · <code>/hide smm &lt;поставщик&gt; &lt;id услуги&gt;</code> · <code>/hide category &lt;название&gt;</code>
    <code>/show</code> с теми же словами снова показывает.
admin-hidden = 🙈 Скрыто: { $what }. Покупатели больше не видят и не покупают это.
admin-shown = 👁 Снова показано: { $what }.
admin-price-usage =
    Формат: <code>/price otp &lt;ISO&gt; &lt;сервис&gt; 0.50</code> (один номер) · <code>/price smm &lt;поставщик&gt; &lt;id услуги&gt; 1.20</code> (за 1000; пакет — за пакет)
    Вместо суммы <code>reset</code> возвращает наценку.
admin-price-set = ✅ Фиксированная цена { $what }: { $value }. Цены обновлены.
admin-minprofit-usage =
    Формат: <code>/minprofit otp 0.05</code> (с номера) · <code>/minprofit smm 0.10</code> (с заказа); <code>0</code> — не дешевле себестоимости, <code>reset</code> убирает.
admin-minprofit-set = ✅ Минимальная прибыль { $what }: { $value }. Цены обновлены.
admin-rename-usage =
    Формат: <code>/rename service &lt;сервис&gt; &lt;новое название&gt;</code> · <code>/rename smm &lt;поставщик&gt; &lt;id услуги&gt; &lt;новое название&gt;</code> · <code>/rename category &lt;название&gt; = &lt;новое название&gt;</code>
    <code>reset</code> вместо нового названия возвращает название поставщика.
admin-rename-set = ✅ { $what } теперь называется: { $value }.
admin-rule-unlisted = ⚠️ Сейчас ни один поставщик этого не продаёт: правило сохранено и сработает, когда появится. Проверьте написание через /catalog и экраны покупателей.
admin-catalog-title = 🗂 <b>Правила каталога</b>
admin-catalog-hidden = 🙈 Скрыто:
admin-catalog-fixed = 🏷 Фиксированные цены:
admin-catalog-minprofit = 📈 Минимальная прибыль:
admin-catalog-names = ✏️ Названия:
admin-catalog-rates = 💱 Курсы, заданные админом:
admin-catalog-none = Ничего не скрыто, не переименовано и нет ручных цен.
admin-catalog-usage = Команды: /hide, /show, /price, /minprofit, /rename, /rate
admin-rate-usage = Формат: <code>/rate &lt;поставщик&gt;</code> показывает курс · <code>/rate &lt;поставщик&gt; 0.011</code> задаёт, сколько стоит единица его валюты в { $currency } · <code>/rate &lt;поставщик&gt; reset</code> возвращает .env. Поставщики: { $names }
admin-rate-show = 💱 { $name }: 1 { $unit } = { $rate } { $currency } ({ $source })
admin-rate-source-env = из .env
admin-rate-source-admin = задан админом; в .env { $env }
admin-rate-set = ✅ Курс { $name }: 1 { $unit } = { $rate } { $currency }. Цены обновлены; подтверждённая покупателем цена остаётся прежней.
admin-rate-reset = ✅ Курс { $name } снова из .env: 1 { $unit } = { $rate } { $currency }. Цены обновлены.

## Automatic provider switching and the group's buttons (services/auto_switch.py, handlers/group_actions.py)
notify-provider-auto-off = ⛔ Поставщик { $provider } сам перестал продавать: { $why ->
        [no-balance] у нас там не хватает денег. Продажи вернутся, когда проверка баланса найдёт деньги.
       *[failures] слишком много его последних запросов не удались. Продажи вернутся, когда он снова ответит.
    } ({ $detail })
notify-provider-auto-on = ✅ Поставщик { $provider } снова продаёт: { $why ->
        [no-balance] проверка баланса нашла деньги.
       *[failures] он снова отвечает.
    }
admin-off-auto = ⛔ выключен автоматически ({ $why ->
        [no-balance] нет денег
       *[failures] ошибки
    }, с { $since }; /provider … on включит его)
group-button-refund = 💸 Вернуть деньги
group-button-adopt = 📥 Принять заказ
group-button-off = ⛔ Выключить
group-button-show = 📊 Поставщики
group-action-admins-only = Это могут только администраторы магазина. Ничего не изменено.
group-action-unknown = Эта кнопка больше ничего не делает.
group-action-gone = { $order } больше нет.
group-action-busy = { $order } покупается прямо сейчас: попробуйте через минуту.
group-action-needs-id = Номер заказа у поставщика для { $order } неизвестен. Найдите заказ у поставщика и отправьте: /adopt { $order } <номер заказа> [телефон]
group-action-what-running = { $verb ->
        [refund] возврат денег
        [adopt] приём заказа
       *[off] выключение
    } (выполняется)
group-action-what-refunded = возвращено { $amount } за { $order }
group-action-what-already-refunded = за { $order } деньги уже возвращены
group-action-what-adopted = { $order } принят как заказ поставщика { $what }
group-action-what-settled = { $order } уже решён ({ $what })
group-action-what-switched-off = { $provider } выключен
group-action-done = ✅ { $what } — { $admin }, { $at }
group-action-already = Уже сделано: { $what } — { $admin }, { $at }
