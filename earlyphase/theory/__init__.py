"""earlyphase.theory"""
