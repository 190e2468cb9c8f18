from aiogram import Router

from handlers import (
    admin,
    admin_api,
    admin_catalog,
    admin_console,
    admin_shop,
    api_keys,
    broadcast,
    errors,
    fallback,
    group_actions,
    menu,
    otp,
    payments,
    privacy,
    smm,
    smm_form,
    wallet,
)


def get_routers() -> list[Router]:
    """Feature routers in order, new ones for each Dispatcher (see handlers/routing.py); the
    fallback router must stay last."""
    templates = [
        errors.router,
        admin.router,
        admin_console.router,
        admin_catalog.router,
        admin_shop.router,
        admin_api.router,
        broadcast.router,
        group_actions.router,  # the group alerts' buttons (admins act, others are told no)
        payments.router,  # before any text handler: a paid update is a message
        menu.router,
        wallet.router,
        otp.router,
        smm.router,  # the SMM section's entry (MenuAction.SMM) lives there
        smm_form.router,  # its order form: a state-filtered text handler, before the fallback
        api_keys.router,  # 🔑 API (MenuAction.API)
        privacy.router,  # /forget
        fallback.router,
    ]
    return [template.build() for template in templates]
